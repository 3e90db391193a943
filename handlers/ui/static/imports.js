// The import wizard: the upload's progress bar, and the step panel kept current from the
// live event stream. Without JavaScript the upload is a plain form and the page has a
// "Check again" link.
import { postWithProgress } from "./upload.js";

const upload = document.querySelector("form[data-import-upload]");
if (upload) {
  upload.addEventListener("submit", (event) => {
    const file = upload.querySelector("input[type=file]").files[0];
    if (!file) return;
    event.preventDefault();
    // The fields come before the file in the form, so the server knows them first.
    postWithProgress(upload, new FormData(upload), file.name);
  });
}

const live = document.querySelector("[data-import-live]");
if (live) {
  document.documentElement.classList.add("live");
  let fetching = null;
  let again = false;

  // Swaps in the panel; when the operation moved to another page of the wizard
  // (prepared, importing, finished), opens that page once.
  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = fetch(live.dataset.importLive, { credentials: "same-origin" });
    try {
      const answer = await fetching;
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const next = page.querySelector("#import-panel");
      const shown = live.querySelector("#import-panel");
      if (!next || !shown) return;
      if (next.dataset.phase !== shown.dataset.phase || next.dataset.operation !== shown.dataset.operation) {
        window.location.assign(live.dataset.page);
        return;
      }
      shown.replaceWith(next);
    } finally {
      fetching = null;
      if (again) { again = false; refresh(); }
    }
  }

  const stream = new EventSource("/ui/events");
  stream.addEventListener("open", refresh);
  stream.addEventListener("import.step", refresh);
  stream.addEventListener("import.progress", refresh);
}
