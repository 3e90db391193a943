// Small enhancements over server-rendered pages; every page works without them.
import "./upload.js";
import "./imports.js";

// Dates: the server sends epoch seconds, the browser shows them in the reader's zone.
for (const el of document.querySelectorAll("time[data-epoch]")) {
  const when = new Date(Number(el.dataset.epoch) * 1000);
  el.dateTime = when.toISOString();
  el.textContent = when.toLocaleString();
}

// Ask before anything marked as destructive.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Live downloads: the event stream moves bars in place (fixed sizes, no layout shift);
// a download that starts or ends reloads the page, which renders lists server-side.
function formatSize(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function showProgress(download) {
  const item = document.querySelector(`[data-download="${CSS.escape(download.id)}"]`);
  if (!item) return false;
  item.querySelector("progress").value = download.progress_percentage || 0;
  item.querySelector(".pct").textContent = `${download.progress_percentage || 0}%`;
  item.querySelector(".speed").textContent = `${formatSize(download.speed || 0)}/s`;
  item.querySelector(".eta").textContent = `ETA ${download.eta ?? "—"} s`;
  item.querySelector(".status").textContent = download.status;
  return true;
}

const live = document.querySelector("[data-live]");
if (live) {
  const stream = new EventSource(live.dataset.live);
  const onProgress = (event) => {
    const data = JSON.parse(event.data);
    if (!showProgress(data.download)) window.location.reload();
  };
  stream.addEventListener("download.progress", onProgress);
  stream.addEventListener("download.paused", onProgress);
  stream.addEventListener("download.resumed", onProgress);
  for (const type of ["download.started", "download.completed", "download.failed", "download.cancelled"]) {
    stream.addEventListener(type, (event) => {
      showProgress(JSON.parse(event.data).download);
      window.location.reload();
    });
  }
}
