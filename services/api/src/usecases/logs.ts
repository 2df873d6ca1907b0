import { type JobStatus, nameSchema, notFound, TERMINAL_STATUSES } from "@trainyard/common";
import { type AttemptDoc, type ClusterDoc, currentAttempt } from "@trainyard/db";
import { attemptDir } from "@trainyard/frameworks";
import { z } from "zod";
import type { ApiDeps } from "../context";
import { UpstreamError } from "../http/errors";

export const MAX_LOG_CHUNK_BYTES = 1024 * 1024;

const boolFlag = z
  .enum(["true", "false", "1", "0"], { error: "must be true or false" })
  .transform((v) => v === "true" || v === "1");

export const logsQuerySchema = z.object({
  node: nameSchema.optional(),
  follow: boolFlag.default(false),
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  maxBytes: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LOG_CHUNK_BYTES)
    .default(64 * 1024),
});
export type LogsQuery = z.infer<typeof logsQuerySchema>;

/** Where one node's output of one attempt lives. */
export interface LogTarget {
  jobId: string;
  attemptId: string;
  node: string;
  cluster: ClusterDoc;
  dir: string;
}

/** The log of `node` (default: rank 0) in the job's current attempt, or its last one. */
export async function resolveLogTarget(deps: ApiDeps, team: string, jobId: string, nodeName?: string): Promise<LogTarget> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  const attempt: AttemptDoc | undefined = currentAttempt(job) ?? job.attempts[job.attempts.length - 1];
  if (!attempt) throw notFound(`job '${jobId}' has no attempt yet, so no log`);
  const node =
    nodeName === undefined ? attempt.nodes.find((n) => n.nodeRank === 0) : attempt.nodes.find((n) => n.name === nodeName);
  if (!node) throw notFound(`node '${nodeName ?? "rank 0"}' in attempt ${attempt.id} of job '${jobId}'`);
  const cluster = await deps.repos.clusters.byId(job.clusterId);
  const clusterNode = cluster?.nodes.find((n) => n.name === node.name);
  if (!cluster || !clusterNode) throw notFound(`node '${node.name}' of cluster '${job.clusterName}'`);
  return { jobId, attemptId: attempt.id, node: node.name, cluster, dir: attemptDir(clusterNode.workRoot, jobId, attempt.id) };
}

/** Bytes [from, from+maxBytes) of the node's output.log; an unreachable node is a 502, not a crash. */
export async function readLogChunk(deps: ApiDeps, t: LogTarget, from: number, maxBytes: number): Promise<Buffer> {
  try {
    return await deps.gateway.readLog(t.cluster, t.node, t.dir, from, maxBytes);
  } catch (err) {
    throw new UpstreamError(`could not read the log on node '${t.node}': ${(err as Error).message}`);
  }
}

export interface LogChunk {
  node: string;
  attemptId: string;
  data: Buffer;
  nextOffset: number;
}

export async function readJobLogs(
  deps: ApiDeps,
  team: string,
  jobId: string,
  q: Pick<LogsQuery, "node" | "from" | "maxBytes">,
): Promise<LogChunk> {
  const target = await resolveLogTarget(deps, team, jobId, q.node);
  const data = await readLogChunk(deps, target, q.from, q.maxBytes);
  return { node: target.node, attemptId: target.attemptId, data, nextOffset: q.from + data.length };
}

export interface LogSink {
  log(data: Buffer, nextOffset: number): void;
  error(message: string): void;
  end(status: JobStatus | "DELETED"): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * Follow a node's log: poll from `from` every `pollMs`, hand each new chunk to the sink, and end
 * once the job is terminal and no new bytes came. A failed read is reported (once per distinct
 * reason) and polling goes on. Returns when done or when `signal` aborts (client went away).
 */
export async function followJobLogs(
  deps: ApiDeps,
  target: LogTarget,
  from: number,
  maxBytes: number,
  sink: LogSink,
  signal: AbortSignal,
): Promise<void> {
  let offset = from;
  let lastError: string | undefined;
  while (!signal.aborted) {
    // Status first, then the read: bytes written before the job ended are always read before "end".
    const job = await deps.repos.jobs.byId(target.jobId);
    const terminal = !job || TERMINAL_STATUSES.has(job.status);
    let got = 0;
    try {
      const data = await readLogChunk(deps, target, offset, maxBytes);
      if (signal.aborted) return;
      lastError = undefined;
      if (data.length) {
        got = data.length;
        offset += got;
        sink.log(data, offset);
      }
    } catch (err) {
      if (signal.aborted) return;
      const message = (err as Error).message;
      if (message !== lastError) sink.error(message);
      lastError = message;
    }
    if (got === 0 && terminal) {
      sink.end(job?.status ?? "DELETED");
      return;
    }
    if (got < maxBytes) await sleep(deps.logPollMs, signal);
  }
}
