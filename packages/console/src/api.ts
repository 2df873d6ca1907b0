import { LineSplitter, SseParser } from "./sse";

/**
 * The API, same origin, as the key's holder. The key lives in sessionStorage (gone when the tab
 * closes) and only ever travels in the Authorization header, never in a URL.
 */
const KEY = "trainyard.apiKey";

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function headers(json: boolean): Record<string, string> {
  const key = session.key();
  if (!key) throw new ApiError(401, "not logged in");
  return { authorization: `Bearer ${key}`, ...(json ? { "content-type": "application/json" } : {}) };
}

async function fail(res: Response): Promise<never> {
  const text = await res.text();
  let message = text || res.statusText;
  try {
    message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
  } catch {
    // not JSON
  }
  throw new ApiError(res.status, message);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) return fail(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export interface LogStreamHandlers {
  onLines(lines: string[]): void;
  onEnd(status: string): void;
  onError(message: string): void;
}

/**
 * Follow a node's log (`?follow=true`, Server-Sent Events) through fetch streaming, so the key stays
 * in a header. Resolves when the stream ends or `signal` aborts it.
 */
export async function followLogs(jobId: string, node: string, handlers: LogStreamHandlers, signal: AbortSignal): Promise<void> {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}/logs?follow=true&node=${encodeURIComponent(node)}`;
  try {
    const res = await fetch(path, { headers: headers(false), signal });
    if (!res.ok || !res.body) return await fail(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    // Each `log` event is a chunk of the file's bytes: a line may end in the next chunk.
    const split = new LineSplitter();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines: string[] = [];
      for (const ev of parser.push(value)) {
        if (ev.event === "log") lines.push(...split.push(ev.data));
        else if (ev.event === "end") {
          lines.push(...split.flush());
          handlers.onEnd(ev.data);
        } else if (ev.event === "error") handlers.onError(ev.data);
      }
      if (lines.length) handlers.onLines(lines);
    }
    const rest = split.flush();
    if (rest.length) handlers.onLines(rest);
  } catch (err) {
    if (signal.aborted) return;
    handlers.onError(err instanceof Error ? err.message : String(err));
  }
}
