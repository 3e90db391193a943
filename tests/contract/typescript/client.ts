// A small Ferry client written against the types openapi-typescript generates from
// openapi.yaml (check.sh puts them in ferry.d.ts next to this file). `tsc --strict` must
// accept it: field names, parameters and response shapes all come from the spec.
import type { components, operations, paths } from "./ferry";

type Schemas = components["schemas"];
type LoginBody = NonNullable<operations["login"]["requestBody"]>["content"]["application/json"];
type LoginAnswer = operations["login"]["responses"]["200"]["content"]["application/json"];
type BrowseQuery = NonNullable<operations["browse"]["parameters"]["query"]>;
type DownloadAnswer = Schemas["DownloadEnvelope"];

export class FerryClient {
  private headers: Record<string, string> = {};

  constructor(private readonly baseUrl: string) {}

  async login(user: string, password: string): Promise<Schemas["User"]> {
    const body: LoginBody = { user, password };
    const answer = (await this.call("POST", "/api/v1/login", body)) as LoginAnswer;
    this.headers = { "X-User-Id": answer.data.userId, "X-Auth-Token": answer.data.authToken };
    return answer.data.me;
  }

  async startDownload(directory: string, url: string, filename?: string): Promise<string> {
    const query: BrowseQuery = { download: url, ...(filename ? { filename } : {}) };
    const params = new URLSearchParams(query as Record<string, string>);
    const started = (await this.call("GET", `/${directory}?${params}`)) as Schemas["DownloadStarted"];
    return started.download_id;
  }

  async download(id: string): Promise<Schemas["Download"]> {
    const path: keyof paths = "/api/v1/downloads/{id}";
    const answer = (await this.call("GET", path.replace("{id}", encodeURIComponent(id)))) as DownloadAnswer;
    return answer.download;
  }

  async waitForDownload(id: string): Promise<Schemas["Download"]> {
    const final: Array<Schemas["Download"]["status"]> = ["completed", "failed", "cancelled"];
    for (;;) {
      const current = await this.download(id);
      if (final.includes(current.status)) return current;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async importStatus(): Promise<operations["import_status"]["responses"]["200"]["content"]["application/json"]["state"]> {
    const answer = (await this.call("GET", "/api/v1/import.status")) as operations["import_status"]["responses"]["200"]["content"]["application/json"];
    return answer.state;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: { "Content-Type": "application/json", ...this.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = (await response.json()) as unknown;
    if (!response.ok) throw new Error((answer as Schemas["Error"]).error);
    return answer;
  }
}
