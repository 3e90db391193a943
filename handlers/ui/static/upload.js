// Upload with a progress bar (XHR upload progress) and drag and drop onto the listing.
// Without JavaScript the forms post as plain multipart forms.

function errorText(html, status) {
  const page = new DOMParser().parseFromString(html, "text/html");
  const error = page.querySelector(".error");
  return error ? error.textContent.trim() : `Upload failed (HTTP ${status}).`;
}

// Posts `data` to the form's action, moving its <progress>; on success goes where the
// server redirected, otherwise shows the page's error in the form's status line.
export function postWithProgress(form, data, what) {
  const bar = form.querySelector("progress");
  const status = form.querySelector(".upload-status");
  const button = form.querySelector("button[type=submit]");
  bar.hidden = false;
  bar.value = 0;
  button.disabled = true;
  status.textContent = `Uploading ${what}…`;
  const request = new XMLHttpRequest();
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
  });
  request.addEventListener("load", () => {
    button.disabled = false;
    if (request.status >= 200 && request.status < 300) {
      bar.value = 100;
      window.location.assign(request.responseURL || window.location.href);
    } else {
      bar.hidden = true;
      status.textContent = errorText(request.responseText, request.status);
    }
  });
  request.addEventListener("error", () => {
    button.disabled = false;
    bar.hidden = true;
    status.textContent = "The upload was interrupted; check the connection and retry.";
  });
  request.open("POST", form.action);
  request.send(data);
}

function send(form, files) {
  const data = new FormData();
  for (const field of form.querySelectorAll("input[type=hidden], input[type=checkbox]")) {
    if (field.type !== "checkbox" || field.checked) data.append(field.name, field.value || "on");
  }
  for (const file of files) data.append("files", file, file.name);
  postWithProgress(form, data, `${files.length} file(s)`);
}

const form = document.querySelector("form[data-upload]");
if (form) {
  form.addEventListener("submit", (event) => {
    const files = form.querySelector("input[type=file]").files;
    if (!files.length) return;
    event.preventDefault();
    send(form, files);
  });
  const target = document.querySelector("[data-drop-target]");
  if (target) {
    target.addEventListener("dragover", (event) => {
      event.preventDefault();
      target.classList.add("dropping");
    });
    target.addEventListener("dragleave", () => target.classList.remove("dropping"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      target.classList.remove("dropping");
      if (event.dataTransfer.files.length) send(form, event.dataTransfer.files);
    });
  }
}
