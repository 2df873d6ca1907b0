import { type JobView, TERMINAL_STATUSES } from "@trainyard/common";
import { type ApiClient, ApiError } from "./client";
import { EXIT, exitCodeForStatus } from "./exit";
import { LineBuffer, statusLine } from "./format";
import { type Io, sleep } from "./io";

const CHUNK = 1024 * 1024;

/**
 * Follow a job to its end as `submit` does: status and progress changes on stderr, rank 0's log
 * on stdout (stderr with --json), a new attempt's log from its start. Returns the exit code of the
 * job's outcome and the final view.
 */
export async function followJob(
  client: ApiClient,
  io: Io,
  id: string,
  opts: { json?: boolean; pollMs?: number; signal?: AbortSignal } = {},
): Promise<{ code: number; job?: JobView }> {
  const say = (s: string) => io.err(`[trainyard] ${s}`);
  const logOut = (s: string) => (opts.json ? io.err(s) : io.out(s));
  let last = "";
  let attempt = "";
  let offset = 0;
  let logError = "";
  const readNewLog = async (): Promise<number> => {
    let got = 0;
    for (;;) {
      let chunk = await client.logChunk(id, { from: offset, maxBytes: CHUNK });
      if (chunk.attempt && chunk.attempt !== attempt) {
        if (attempt) say(`attempt ${chunk.attempt} started; its log follows`);
        attempt = chunk.attempt;
        if (offset !== 0) {
          offset = 0;
          chunk = await client.logChunk(id, { from: 0, maxBytes: CHUNK });
        }
      }
      if (!chunk.text) return got;
      got += chunk.text.length;
      offset = chunk.nextOffset;
      logOut(chunk.text.endsWith("\n") ? chunk.text.slice(0, -1) : chunk.text);
      if (Buffer.byteLength(chunk.text) < CHUNK) return got;
    }
  };
  for (;;) {
    if (opts.signal?.aborted) return { code: EXIT.INTERRUPTED };
    const job = await client.getJob(id);
    const line = statusLine(job);
    if (line !== last) say(`job ${id}: ${line}`);
    last = line;
    if (job.attempts.length) {
      try {
        await readNewLog();
        logError = "";
      } catch (err) {
        // No log yet (404) or a node that cannot be read right now (502): say so once, go on.
        if (!(err instanceof ApiError) || ![404, 502].includes(err.status)) throw err;
        if (err.status === 502 && err.apiMessage !== logError) say(`log: ${err.apiMessage}`);
        logError = err.apiMessage;
      }
    }
    if (TERMINAL_STATUSES.has(job.status)) {
      if (job.failure) say(`failure: ${job.failure.reason}`);
      say(`job ${id} ended ${job.status}`);
      return { code: exitCodeForStatus(job.status), job };
    }
    await sleep(opts.pollMs ?? 1000, opts.signal);
  }
}

export interface LogEvent {
  type: "log";
  job: string;
  node: string;
  attempt: string;
  line: string;
  /** Byte offset just after this line: `logs --since <offset>` resumes after it. */
  offset: number;
}

/**
 * Follow one node's log through the API's event stream until the job ends; reconnects from the
 * last offset if the stream drops. Returns the exit code of the job's outcome.
 */
export async function followLog(
  client: ApiClient,
  io: Io,
  id: string,
  opts: { node?: string; from: number; json?: boolean; signal?: AbortSignal },
): Promise<number> {
  let offset = opts.from;
  let failures = 0;
  const lines = new LineBuffer();
  let lineStart = offset;
  let node = opts.node ?? "";
  let attempt = "";
  const emit = (text: string) => {
    for (const line of lines.push(text)) {
      lineStart += Buffer.byteLength(line) + 1;
      if (opts.json) io.json({ type: "log", job: id, node, attempt, line, offset: lineStart } satisfies LogEvent);
      else io.out(line);
    }
  };
  const flush = () => {
    for (const line of lines.flush()) {
      lineStart += Buffer.byteLength(line);
      if (opts.json) io.json({ type: "log", job: id, node, attempt, line, offset: lineStart } satisfies LogEvent);
      else io.out(line);
    }
  };
  for (;;) {
    try {
      for await (const ev of client.followLogs(id, { ...(node ? { node } : {}), from: offset }, opts.signal)) {
        node = ev.node;
        attempt = ev.attempt;
        failures = 0;
        if (ev.event === "log") {
          emit(ev.data);
          if (ev.id !== undefined) offset = Number(ev.id);
        } else if (ev.event === "error") {
          if (opts.json) io.json({ type: "error", job: id, node, message: ev.data });
          else io.err(`[trainyard] log: ${ev.data}`);
        } else if (ev.event === "end") {
          flush();
          if (opts.json) io.json({ type: "end", job: id, node, attempt, status: ev.data });
          else io.err(`[trainyard] job ${id} ended ${ev.data}`);
          return exitCodeForStatus(ev.data);
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) {
        flush();
        return EXIT.INTERRUPTED;
      }
      if (err instanceof ApiError || ++failures > 5) throw err;
    }
    if (opts.signal?.aborted) {
      flush();
      return EXIT.INTERRUPTED;
    }
    // The stream closed without an end: reconnect from where it stopped.
    await sleep(Math.min(1000 * 2 ** failures, 10_000), opts.signal);
  }
}
