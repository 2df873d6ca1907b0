import { releaseAndOffer } from "@trainyard/core";
import type { AttemptNodeDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { attemptDir, type ProbeResult, torchrunRootCause, torchrunWorkerFailure } from "@trainyard/frameworks";
import type { MonitorDeps } from "../deps";
import { progressFromMetrics } from "../progress";

type NodeObservation = { node: AttemptNodeDoc; probe?: ProbeResult; error?: string };

/**
 * One health/progress check of a running attempt: probe every node, record states, progress and
 * log tails; on a failed or vanished rank ask the launcher to stop the gang; on all ranks exiting 0
 * mark the job SUCCEEDED; otherwise check again after the interval.
 */
export async function checkAttempt(deps: MonitorDeps, jobId: string, attemptId: string): Promise<void> {
  const { repos, logger } = deps;
  const job = await repos.jobs.byId(jobId);
  if (!job || job.status !== "RUNNING" || job.currentAttemptId !== attemptId) return;
  if (job.stopRequest) return; // the launcher is stopping it
  const cluster = await repos.clusters.byId(job.clusterId);
  if (!cluster) return;
  const attemptIndex = job.attempts.findIndex((a) => a.id === attemptId);
  const attempt = job.attempts[attemptIndex]!;
  const now = new Date();

  const observations = await Promise.all(attempt.nodes.map((n) => observe(deps, cluster, job, attemptId, n)));
  const nodes = observations.map((o) => nextNodeState(o, now, deps.lostAfterMisses));

  // Progress comes from the rank-0 node's metrics file.
  const head = observations.find((o) => o.node.nodeRank === 0)?.probe;
  const progress = head ? progressFromMetrics(head.metrics, now) : undefined;

  const failure = findFailure(job, observations, nodes);
  if (failure) {
    await repos.jobs.updateAttempt(job._id, attemptId, attemptIndex, { nodes, ...(progress ? { progress } : {}) });
    const requested = await repos.jobs.requestStop(job._id, attemptId, { kind: "fail", requestedAt: now, ...failure });
    if (requested) {
      logger.warn({ jobId, attemptId, reason: failure.reason }, "rank failed; stopping the gang");
      await deps.bus.send("control", { jobId, attemptId });
    }
    return;
  }

  if (nodes.every((n) => n.state === "exited" && n.exitCode === 0)) {
    const done = await repos.jobs.transition(job._id, ["RUNNING"], "SUCCEEDED", {
      attemptId,
      set: {
        endedAt: now,
        ...(progress ? { progress } : {}),
        [`attempts.${attemptIndex}.nodes`]: nodes,
        [`attempts.${attemptIndex}.outcome`]: "SUCCEEDED",
        [`attempts.${attemptIndex}.endedAt`]: now,
      },
    });
    if (done) {
      logger.info({ jobId, attemptId }, "job succeeded");
      await releaseAndOffer(repos, deps.bus, cluster._id, jobId);
      await deps.bus.send("cost", { jobId, event: "ended", at: now.toISOString() });
      await deps.bus.send("alerts", {
        type: "job.succeeded",
        severity: "info",
        jobId,
        message: `${job.name} succeeded`,
        at: now.toISOString(),
      });
    }
    return;
  }

  const still = await repos.jobs.updateAttempt(job._id, attemptId, attemptIndex, { nodes, ...(progress ? { progress } : {}) });
  if (still) await scheduleNextCheck(deps, jobId, attemptId);
}

interface Failure {
  reason: string;
  node: string;
  rank?: number;
  exitCode?: number;
}

/**
 * The first sign that the gang cannot finish: a node lost, a node's launcher exited non-zero, or
 * torchrun reporting a failed worker while its agent still waits for the other nodes.
 */
export function findFailure(job: JobDoc, observations: NodeObservation[], nodes: AttemptNodeDoc[]): Failure | undefined {
  const gpusPerNode = job.spec.resources.gpusPerNode;
  const staticRanks = job.spec.pytorch?.rendezvous !== "c10d";
  for (const node of nodes) {
    const obs = observations.find((o) => o.node.name === node.name);
    const tail = obs?.probe?.logTail ?? "";
    if (node.state === "lost") {
      return {
        node: node.name,
        reason: `node ${node.name} lost: ${obs?.error ?? "its processes vanished without an exit code"}`,
      };
    }
    const worker = torchrunWorkerFailure(tail);
    const exitedBadly = node.state === "exited" && node.exitCode !== 0;
    if (!worker && !exitedBadly) continue;
    const cause = torchrunRootCause(tail);
    // Global rank: from torchrun's summary, or (static rendezvous only) node rank x ranks per node + local rank.
    const rank = cause.rank ?? (worker && staticRanks ? node.nodeRank * gpusPerNode + worker.localRank : undefined);
    const exitCode = cause.exitCode ?? worker?.exitCode ?? node.exitCode;
    const who = `node ${node.name}${rank !== undefined ? ` rank ${rank}` : worker ? ` local rank ${worker.localRank}` : ""}`;
    return {
      node: node.name,
      ...(rank !== undefined ? { rank } : {}),
      ...(exitCode !== undefined ? { exitCode } : {}),
      reason: exitedBadly
        ? `${who} exited with code ${exitCode}${node.exitCode !== exitCode ? ` (torchrun exited ${node.exitCode})` : ""}`
        : `${who} failed with exit code ${exitCode}`,
    };
  }
  return undefined;
}

/** Next check, deduplicated per interval slot so duplicate messages never multiply the checks. */
export async function scheduleNextCheck(deps: MonitorDeps, jobId: string, attemptId: string): Promise<void> {
  const slot = Math.floor(Date.now() / deps.intervalMs) + 1;
  await deps.bus.send("monitor", { jobId, attemptId }, { delay: deps.intervalMs, jobId: `mon-${attemptId}-${slot}` });
}

export async function rearmChecks(deps: MonitorDeps): Promise<void> {
  for (const job of await deps.repos.jobs.listByStatus(["RUNNING"])) {
    if (job.currentAttemptId && !job.stopRequest) await scheduleNextCheck(deps, job._id.toString(), job.currentAttemptId);
  }
}

async function observe(
  deps: MonitorDeps,
  cluster: ClusterDoc,
  job: JobDoc,
  attemptId: string,
  node: AttemptNodeDoc,
): Promise<NodeObservation> {
  const spec = cluster.nodes.find((n) => n.name === node.name);
  if (!spec) return { node, error: "node no longer in cluster" };
  try {
    const probe = await deps.gateway.probe(
      cluster,
      node.name,
      attemptDir(spec.workRoot, job._id.toString(), attemptId),
      attemptId,
    );
    return { node, probe };
  } catch (err) {
    return { node, error: (err as Error).message };
  }
}

/** How one node's state moves, given what a probe saw (pure). */
export function nextNodeState(o: NodeObservation, now: Date, lostAfterMisses: number): AttemptNodeDoc {
  const { node, probe } = o;
  if (!probe) {
    // One missed check is a blip, not a failure: only several in a row make the node lost.
    const missed = (node.missedChecks ?? 0) + 1;
    return { ...node, missedChecks: missed, state: missed >= lostAfterMisses ? "lost" : "unreachable" };
  }
  const base = { ...node, missedChecks: 0, lastSeenAt: now, logTail: probe.logTail, ...(probe.pgid ? { pgid: probe.pgid } : {}) };
  if (probe.exitCode !== undefined) return { ...base, state: "exited", exitCode: probe.exitCode };
  if (probe.alive) return { ...base, state: "running" };
  // Not alive and no exit code: the wrapper itself was killed, or its directory is gone.
  return { ...base, state: "lost" };
}
