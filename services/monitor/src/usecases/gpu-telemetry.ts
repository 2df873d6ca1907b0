import type { AttemptNodeDoc, ClusterDoc, JobDoc, NewTelemetry } from "@trainyard/db";
import { gpuFaults, type ProbeResult } from "@trainyard/frameworks";
import type { MonitorDeps } from "../deps";

/** A node whose GPUs report faults: the attempt recovers elsewhere, per its retry policy. */
export interface GpuFault {
  node: string;
  reason: string;
  lost: true;
}

/**
 * What one check's probes saw of GPUs and processes: exported, and added to `samples` when given
 * (the cluster check stores those of all its attempts in one insert; bounded per job here); a GPU fault marks
 * the node unhealthy (no new placement, alert) and is returned as the attempt's failure; GPUs idle
 * for the configured window raise one alert per attempt.
 */
export async function recordTelemetry(
  deps: MonitorDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  attemptIndex: number,
  observations: Array<{ node: AttemptNodeDoc; probe?: ProbeResult }>,
  now: Date,
  /** Where this check's samples go to be stored; none when this check stores none (needsWrite). */
  samples: NewTelemetry[] | undefined,
): Promise<GpuFault | undefined> {
  const attempt = job.attempts[attemptIndex]!;
  const jobId = job._id.toString();
  const utilsNow: Array<number | undefined> = [];
  for (const { node, probe } of observations) {
    const t = probe?.telemetry;
    if (!t) continue;
    // Only the attempt's own GPUs: others on the node belong to other jobs.
    const gpus = t.gpus.filter((g) => node.gpuIndices.includes(g.index));
    utilsNow.push(...gpus.map((g) => g.utilPct));
    samples?.push({ jobId: job._id, attemptId: attempt.id, node: node.name, at: now, gpus, ...(t.proc ? { proc: t.proc } : {}) });
    deps.telemetry.metrics.record({
      labels: { team: job.team, project: job.project, job_id: jobId, node: node.name },
      gpus,
      ...(t.proc ? { proc: t.proc } : {}),
    });
  }
  try {
    // The first check of each minute trims the job to its newest samples, once it can have more
    // than it keeps: before that a prune would read every sample of the job only to delete none.
    const minuteStarts = Math.floor(now.getTime() / 60_000) !== Math.floor((now.getTime() - deps.intervalMs) / 60_000);
    if (minuteStarts && couldOutgrowCap(job, now, deps.intervalMs, deps.telemetry.maxSamplesPerJob)) {
      await deps.repos.telemetry.prune(job._id, deps.telemetry.maxSamplesPerJob);
    }
  } catch (err) {
    deps.logger.warn({ jobId, err: (err as Error).message }, "telemetry not pruned; the next minute tries again");
  }

  await alertIfIdle(deps, job, attemptIndex, now, utilsNow);
  return markFaultyNodes(deps, cluster, observations, now);
}

/**
 * Whether a job may hold more than `cap` samples by now (pure): at most one per node of an attempt
 * per check since the job was created, doubled for checks that come early (a restarted schedule, a
 * second replica taking over).
 */
export function couldOutgrowCap(
  job: Pick<JobDoc, "createdAt" | "attempts">,
  now: Date,
  intervalMs: number,
  cap: number,
): boolean {
  const checks = Math.max(0, now.getTime() - new Date(job.createdAt).getTime()) / intervalMs + 1;
  const nodes = Math.max(1, ...job.attempts.map((a) => a.nodes.length));
  return 2 * checks * nodes > cap;
}

async function markFaultyNodes(
  deps: MonitorDeps,
  cluster: ClusterDoc,
  observations: Array<{ node: AttemptNodeDoc; probe?: ProbeResult }>,
  now: Date,
): Promise<GpuFault | undefined> {
  let first: GpuFault | undefined;
  for (const { node, probe } of observations) {
    const t = probe?.telemetry;
    if (!t) continue;
    const faults = gpuFaults({ nvidiaSmi: true, health: t.health, ...(t.error ? { error: t.error } : {}) });
    if (!faults.length) continue;
    await deps.repos.clusters.markUnhealthy(cluster._id, node.name, {
      state: "unhealthy",
      reasons: faults,
      at: now.toISOString(),
      source: "monitor",
    });
    deps.logger.warn({ cluster: cluster.name, node: node.name, faults }, "node unhealthy");
    await deps.bus.send("alerts", {
      type: "node.unhealthy",
      severity: "critical",
      clusterId: cluster._id.toString(),
      message: `cluster ${cluster.name}, node ${node.name} is unhealthy: ${faults.join("; ")}`,
      at: now.toISOString(),
      dedupKey: `node.unhealthy:${cluster._id.toString()}:${node.name}`,
    });
    first ??= { node: node.name, reason: `node ${node.name} is unhealthy: ${faults.join("; ")}`, lost: true };
  }
  return first;
}

/** One `job.gpu_idle` alert per attempt once every GPU of it stayed under the threshold for the whole window. */
async function alertIfIdle(
  deps: MonitorDeps,
  job: JobDoc,
  attemptIndex: number,
  now: Date,
  /** This check's utilisation of the attempt's GPUs (its samples are stored after the check). */
  utilsNow: Array<number | undefined>,
): Promise<void> {
  const { idleSeconds, idleUtilPct } = deps.telemetry;
  const attempt = job.attempts[attemptIndex]!;
  if (!idleSeconds || attempt.gpuIdleAlertedAt || !attempt.startedAt) return;
  // Idle is judged when a check sees the attempt's GPUs all idle: no window read per attempt and
  // check otherwise (CPU nodes, busy GPUs), which at a thousand attempts is most of the database's work.
  if (!utilsNow.length || utilsNow.some((u) => u === undefined || u >= idleUtilPct)) return;
  const since = new Date(now.getTime() - idleSeconds * 1000);
  if (new Date(attempt.startedAt) > since) return; // not running for a whole window yet
  const window = (await deps.repos.telemetry.forJob(job._id, { since, limit: 5000 })).filter((s) => s.attemptId === attempt.id);
  const utils = window.flatMap((s) => s.gpus.map((g) => g.utilPct));
  // No GPU samples (CPU nodes, no nvidia-smi) is not "idle", nor is a window with one sample.
  if (window.length < 2 || !utils.length || utils.some((u) => u === undefined || u >= idleUtilPct)) return;
  const max = Math.max(...(utils as number[]));
  if (!(await deps.repos.jobs.updateAttempt(job._id, attempt.id, attemptIndex, { gpuIdleAlertedAt: now }))) return;
  const message = `${job.name}: its GPUs stayed below ${idleUtilPct}% utilisation for ${idleSeconds} s (highest ${max}%)`;
  deps.logger.warn({ jobId: job._id.toString(), max }, "GPUs idle");
  await deps.bus.send("alerts", {
    type: "job.gpu_idle",
    severity: "warning",
    jobId: job._id.toString(),
    message,
    at: now.toISOString(),
    facts: { thresholdPct: idleUtilPct, seconds: idleSeconds, maxUtilPct: max },
  });
}
