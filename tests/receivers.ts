import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface ReceivedRequest {
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Status this receiver answered. */
  status: number;
}

/** Answers for one path, in order; the last one repeats. */
export type Script = Array<{ status: number; headers?: Record<string, string> }>;

/**
 * A real HTTP receiver on 127.0.0.1 for webhook and Slack-compatible deliveries: each path answers
 * from its script (default 200) and every request is recorded.
 */
export async function startHttpReceiver(scripts: Record<string, Script> = {}): Promise<{
  url: string;
  requests: ReceivedRequest[];
  on(path: string): ReceivedRequest[];
  close(): Promise<void>;
}> {
  const requests: ReceivedRequest[] = [];
  const served = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const n = served.get(path) ?? 0;
      served.set(path, n + 1);
      const script = scripts[path] ?? [{ status: 200 }];
      const answer = script[Math.min(n, script.length - 1)]!;
      requests.push({
        path,
        at: Date.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        status: answer.status,
      });
      res
        .writeHead(answer.status, { "content-type": "text/plain", ...(answer.headers ?? {}) })
        .end(answer.status < 300 ? "ok" : "nope");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    on: (path) => requests.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  at: number;
}

/** A real SMTP server (smtp-server) on 127.0.0.1 that accepts every message, without TLS or auth. */
export async function startSmtpReceiver(): Promise<{ port: number; mails: ReceivedMail[]; close(): Promise<void> }> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
          at: Date.now(),
        });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

type Falsy = false | 0 | "" | null | undefined;

/** Poll until `fn` returns a truthy value, and return it. */
export async function eventually<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs = 30_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
