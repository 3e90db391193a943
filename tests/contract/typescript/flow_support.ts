// What fetch_flow.ts and heyapi_flow.ts share: their arguments, checks and polling.

// The two things of Node's these use, so that no @types/node is needed.
declare const process: { argv: string[]; exit(code: number): never };

// BASE_URL USER PASSWORD REMOTE_URL CSV_ZIP_BASE64 SLOW_URL (a file sent slowly, by ranges)
export const [baseUrl, user, password, remoteUrl, csvZipBase64, slowUrl] = process.argv.slice(2);
// Refused by every server: a batch item that shows a refusal beside a start.
export const refusedUrl = "ftp://files.example.test/refused.bin";

export function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`expected ${what}`);
}

export async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const answer = await probe();
    if (answer !== undefined) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("timed out");
}

export function run(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
