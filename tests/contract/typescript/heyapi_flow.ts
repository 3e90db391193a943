// The same download and CSV import as fetch_flow.ts, through the SDK @hey-api/openapi-ts
// generates from openapi.yaml (check.sh puts it in ./heyapi). `tsc --strict` checks it in
// `make lint`; tests/contract/test_typescript_clients.py runs it against a live server:
// node heyapi_flow.js BASE USER PASSWORD REMOTE_URL CSV_ZIP_BASE64 SLOW_URL.
import { client } from "./heyapi/client.gen";
import {
  browse,
  cancelDownload,
  getDownload,
  getFileContent,
  getImportFileData,
  getImportProgress,
  listActiveDownloads,
  listChannels,
  listDownloadHistory,
  listFiles,
  login,
  pauseDownload,
  resumeDownload,
  startDownloads,
  startImport,
  uploadImportFile,
} from "./heyapi/sdk.gen";
import { baseUrl, check, csvZipBase64, password, refusedUrl, remoteUrl, run, slowUrl, until, user } from "./flow_support.js";


async function main(): Promise<void> {
  client.setConfig({ baseUrl });
  const loggedIn = await login({ body: { user, password } });
  check(loggedIn.data !== undefined, "a login");
  client.setConfig({ headers: { Authorization: `Bearer ${loggedIn.data!.data.authToken}` } });

  const started = await browse({ path: { path: "incoming-sdk" }, query: { download: remoteUrl } });
  // `GET /{path}` may also answer a file's bytes: the seed's route mixes shapes.
  const startedBody = started.data;
  check(typeof startedBody === "object" && startedBody !== null && "download_id" in startedBody, "a started download");
  const downloadId = (startedBody as { download_id: string }).download_id;
  const download = await until(async () => {
    const { data } = await getDownload({ path: { id: downloadId } });
    const status = data?.download.status;
    return status === "completed" || status === "failed" ? data!.download : undefined;
  });
  check(download.status === "completed", `a completed download, got ${download.error}`);

  const listing = await listFiles({ query: { path: "incoming-sdk" } });
  check(listing.data?.entries.length === 1, "one file listed");
  const name = listing.data!.entries[0].name;
  const content = await getFileContent({ query: { path: `incoming-sdk/${name}` }, parseAs: "arrayBuffer" });
  check((content.data as ArrayBuffer | undefined)?.byteLength === download.total_bytes, "the file's bytes");
  const history = await listDownloadHistory({ query: { status: "completed" } });
  check(history.data?.history[0]?.id === downloadId, "the download in the history");

  const batch = await startDownloads({
    body: { items: [{ url: slowUrl, directory: "batch-sdk" }, { url: refusedUrl, directory: "batch-sdk" }] },
  });
  const [slow, refused] = batch.data?.downloads ?? [];
  check(slow?.success === true && refused?.error === "INVALID_URL", "one started, one refused");
  const slowId = slow.download_id!;
  await until(async () => {
    const { data } = await listActiveDownloads();
    return data?.downloads.find((d) => d.id === slowId)?.status === "downloading" ? true : undefined;
  });
  const paused = await pauseDownload({ path: { id: slowId } });
  check(paused.data?.download.status === "paused", "a paused download");
  const resumed = await resumeDownload({ path: { id: slowId } });
  check(resumed.data?.restarted === false, "a download resumed by range");
  const cancelled = await cancelDownload({ path: { id: slowId } });
  check(cancelled.data?.download.status === "cancelled", "a cancelled download");

  const uploaded = await uploadImportFile({
    body: { binaryContent: csvZipBase64, contentType: "application/zip", fileName: "export.zip", importerKey: "csv" },
  });
  check(uploaded.data?.success === true, "an uploaded export");
  await until(async () => {
    const { data } = await getImportFileData();
    return data !== undefined && "users" in data ? data : undefined;
  });
  const run = await startImport({ body: { input: { users: { all: true }, channels: { all: true } } } });
  check(run.data?.success === true, "a started import");
  await until(async () => {
    const { data } = await getImportProgress();
    return data?.step === "importer_done" ? data : undefined;
  });
  const channels = await listChannels();
  check(
    channels.data?.channels.some((room) => room.name === "imported-csv-channel") === true,
    "the imported channel",
  );
  console.log("@hey-api/openapi-ts drove a download and a CSV import");
}

run(main);
