/** Where commands write: data on stdout (only JSON with --json), everything else on stderr. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  json(value: unknown): void;
  isTty: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
  json: (v) => process.stdout.write(`${JSON.stringify(v)}\n`),
  isTty: Boolean(process.stdout.isTTY),
};

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
