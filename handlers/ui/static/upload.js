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

// Files larger than this go up in chunks the server keeps between requests, so an
// interrupted upload goes on from where it stopped (Resume, or choosing the file again).
export const CHUNKED_ABOVE = 8 * 1024 * 1024;
export const CHUNK_SIZE = 8 * 1024 * 1024;

function chunkQuery(form, file) {
  const overwrite = form.querySelector("input[name=overwrite]");
  return new URLSearchParams({
    folder: form.querySelector("input[name=folder]").value,
    name: file.name,
    total: String(file.size),
    overwrite: overwrite && overwrite.checked ? "on" : "",
  });
}

async function failure(response) {
  return new Error(errorText(await response.text(), response.status));
}

// Sends what the server does not hold yet of `file`, moving `bar` (0-100).
async function sendInChunks(form, file, bar) {
  const query = chunkQuery(form, file);
  const token = form.querySelector("input[name=csrf_token]").value;
  const held = await fetch(`/ui/edit/upload-held?${query}`);
  if (!held.ok) throw await failure(held);
  let offset = (await held.json()).size;
  while (offset < file.size || file.size === 0) {
    bar.value = file.size ? Math.round((offset / file.size) * 100) : 0;
    const response = await fetch(`/ui/edit/upload-chunk?${query}&offset=${offset}`, {
      method: "POST",
      headers: { "X-CSRF-Token": token },
      body: file.slice(offset, offset + CHUNK_SIZE),
    });
    if (response.status === 409) {
      offset = (await response.json()).size;
      continue;
    }
    if (!response.ok) throw await failure(response);
    const answer = await response.json();
    offset = answer.size;
    if (answer.complete) break;
  }
  bar.value = 100;
}

async function cancelChunks(form, file) {
  const token = form.querySelector("input[name=csrf_token]").value;
  await fetch(`/ui/edit/upload-cancel?${chunkQuery(form, file)}`, {
    method: "POST",
    headers: { "X-CSRF-Token": token },
  });
}

function sendLarge(form, files) {
  const bar = form.querySelector("progress");
  const status = form.querySelector(".upload-status");
  const button = form.querySelector("button[type=submit]");
  const resume = form.querySelector("button[data-resume]");
  const cancel = form.querySelector("button[data-cancel]");
  const queue = [...files];
  const run = async () => {
    bar.hidden = false;
    button.disabled = true;
    resume.hidden = true;
    cancel.hidden = true;
    try {
      while (queue.length) {
        status.textContent = `Uploading ${queue[0].name}…`;
        await sendInChunks(form, queue[0], bar);
        queue.shift();
      }
      window.location.reload();
    } catch (problem) {
      button.disabled = false;
      const interrupted = problem instanceof TypeError; // fetch's network failure
      status.textContent = interrupted
        ? `The upload of ${queue[0].name} was interrupted at ${bar.value}%; what arrived is kept.`
        : problem.message;
      resume.hidden = false;
      cancel.hidden = false;
      resume.onclick = run;
      cancel.onclick = async () => {
        await cancelChunks(form, queue[0]);
        resume.hidden = true;
        cancel.hidden = true;
        bar.hidden = true;
        status.textContent = `The upload of ${queue[0].name} was cancelled.`;
      };
      resume.focus();
    }
  };
  run();
}

function send(form, files) {
  if ([...files].some((file) => file.size > CHUNKED_ABOVE)) {
    sendLarge(form, files);
    return;
  }
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
