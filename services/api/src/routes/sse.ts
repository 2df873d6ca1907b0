import type { Request, Response } from "express";
import type { ApiDeps } from "../context";
import { followJobLogs, type LogTarget } from "../usecases/logs";

/** One SSE event; every line of `data` gets its own `data:` field (CR/LF split, as EventSource does). */
export function sseEvent(event: string, data: string, id?: string): string {
  const lines = data.split(/\r\n|\r|\n/).map((l) => `data: ${l}`);
  return `${id !== undefined ? `id: ${id}\n` : ""}event: ${event}\n${lines.join("\n")}\n\n`;
}

const HEARTBEAT_MS = 15_000;

/**
 * Server-Sent Events of a node's log: `event: log` per new chunk (id = next byte offset),
 * `event: error` when a read fails, `event: end` with the job's final status. Stops polling as
 * soon as the client disconnects or the API shuts down.
 */
export async function streamLogs(
  deps: ApiDeps,
  req: Request,
  res: Response,
  target: LogTarget,
  from: number,
  maxBytes: number,
): Promise<void> {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  deps.streams.add(stop);
  res.on("close", stop);
  req.on("close", stop);

  res.status(200).set({
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
    "X-Log-Node": target.node,
    "X-Log-Attempt": target.attemptId,
  });
  res.flushHeaders();
  res.write(": following log\n\n");
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  heartbeat.unref();

  const write = (s: string) => {
    if (!ctl.signal.aborted && !res.writableEnded) res.write(s);
  };
  try {
    await followJobLogs(
      deps,
      target,
      from,
      maxBytes,
      {
        log: (data, next) => write(sseEvent("log", data.toString("utf8"), String(next))),
        error: (message) => write(sseEvent("error", message)),
        end: (status) => write(sseEvent("end", status)),
      },
      ctl.signal,
    );
  } catch (err) {
    // Headers are gone: report in-band, then close.
    deps.logger.error({ err, jobId: target.jobId }, "log stream failed");
    write(sseEvent("error", "internal error"));
  } finally {
    clearInterval(heartbeat);
    deps.streams.delete(stop);
    if (!res.writableEnded) res.end();
  }
}
