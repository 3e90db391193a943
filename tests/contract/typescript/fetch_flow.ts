// A download and a CSV import driven through openapi-fetch with the types
// openapi-typescript generates from openapi.yaml (check.sh puts them in ferry.d.ts).
// `tsc --strict` checks it in `make lint`; tests/contract/test_typescript_clients.py runs
// it against a live server: node fetch_flow.js BASE USER PASSWORD REMOTE_URL CSV_ZIP_BASE64
// SLOW_URL.
import createClient from "openapi-fetch";
import type { paths } from "./ferry";
import { baseUrl, check, csvZipBase64, password, refusedUrl, remoteUrl, run, slowUrl, until, user } from "./flow_support.js";


async function main(): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  const login = await anonymous.POST("/api/v1/login", { body: { user, password } });
  check(login.data !== undefined, "a login");
  const token = login.data!.data.authToken;
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  const started = await client.GET("/{path}", {
    params: { path: { path: "incoming" }, query: { download: remoteUrl } },
  });
  // `GET /{path}` may also answer a file's bytes (a string): the seed's route mixes shapes.
  const startedBody = started.data;
  check(typeof startedBody === "object" && "download_id" in startedBody, "a started download");
  const downloadId = (startedBody as { download_id: string }).download_id;
  const download = await until(async () => {
    const { data } = await client.GET("/api/v1/downloads/{id}", {
      params: { path: { id: downloadId } },
    });
    const status = data?.download.status;
    return status === "completed" || status === "failed" ? data!.download : undefined;
  });
  check(download.status === "completed", `a completed download, got ${download.error}`);

  const listing = await client.GET("/api/v1/files", { params: { query: { path: "incoming" } } });
  check(listing.data?.entries.length === 1, "one file listed");
  const name = listing.data!.entries[0].name;
  const content = await client.GET("/api/v1/files/content", {
    params: { query: { path: `incoming/${name}` } },
    parseAs: "arrayBuffer",
  });
  check(content.data?.byteLength === download.total_bytes, "the file's bytes");
  const history = await client.GET("/api/v1/downloads/history", {
    params: { query: { status: "completed" } },
  });
  check(history.data?.history[0]?.id === downloadId, "the download in the history");

  const batch = await client.POST("/api/v1/downloads", {
    body: { items: [{ url: slowUrl, directory: "batch" }, { url: refusedUrl, directory: "batch" }] },
  });
  const [slow, refused] = batch.data?.downloads ?? [];
  check(slow?.success === true && refused?.error === "INVALID_URL", "one started, one refused");
  const slowId = slow.download_id!;
  await until(async () => {
    const { data } = await client.GET("/api/v1/downloads");
    return data?.downloads.find((d) => d.id === slowId)?.status === "downloading" ? true : undefined;
  });
  const byId = { params: { path: { id: slowId } } };
  const paused = await client.POST("/api/v1/downloads/{id}/pause", byId);
  check(paused.data?.download.status === "paused", "a paused download");
  const resumed = await client.POST("/api/v1/downloads/{id}/resume", byId);
  check(resumed.data?.restarted === false, "a download resumed by range");
  const cancelled = await client.DELETE("/api/v1/downloads/{id}", byId);
  check(cancelled.data?.download.status === "cancelled", "a cancelled download");

  const uploaded = await client.POST("/api/v1/uploadImportFile", {
    body: {
      binaryContent: csvZipBase64,
      contentType: "application/zip",
      fileName: "export.zip",
      importerKey: "csv",
    },
  });
  check(uploaded.data?.success === true, "an uploaded export");
  await until(async () => {
    const { data } = await client.GET("/api/v1/getImportFileData");
    return data !== undefined && "users" in data ? data : undefined;
  });
  const run = await client.POST("/api/v1/startImport", {
    body: { input: { users: { all: true }, channels: { all: true } } },
  });
  check(run.data?.success === true, "a started import");
  await until(async () => {
    const { data } = await client.GET("/api/v1/getImportProgress");
    return data?.step === "importer_done" ? data : undefined;
  });
  const channels = await client.GET("/api/v1/channels.list");
  check(
    channels.data?.channels.some((room) => room.name === "imported-csv-channel") === true,
    "the imported channel",
  );
  console.log("openapi-fetch drove a download and a CSV import");
}

run(main);
