import { DEFAULT_RETRY_POLICY, failureNumber } from "@trainyard/common";
import {
  collectCheckpoints,
  finishAttempt,
  ingestCheckpoints,
  revokeInterNodeSsh,
  settlePreemption,
  updateHostDiscovery,
} from "@trainyard/core";
import type { AttemptNodeDoc, CheckpointDoc, ClusterDoc, JobDoc, NewTelemetry } from "@trainyard/db";
import {
  attemptSucceeded,
  decideRetry,
  findAttemptFailure,
  frameworkTraits,
  type ProbeResult,
  settleNodeStates,
} from "@trainyard/frameworks";
import type { MonitorDeps } from "../deps";
import { progressFromMetrics } from "../progress";
import { recordTelemetry } from "./gpu-telemetry";
import { recordProgressHistory } from "./progress-history";

/** What one node probe saw of an attempt on that node (or why the node could not be asked). */
export type NodeObservation = { node: AttemptNodeDoc; probe?: ProbeResult; error?: string };

/**
 * Apply one health/progress check of a running attempt, from what its nodes' probes saw (the
 * cluster check probes each node once for all its attempts): record states, progress and log
 * tails; on a failed or vanished rank ask the launcher to stop the gang; on all ranks exiting 0
 * mark the job SUCCEEDED.
 */
export async function checkAttempt(
  deps: MonitorDeps,
  cluster: ClusterDoc,
  job: JobDoc,
  observations: NodeObservation[],
  now: Date,
  /** Where this check's telemetry samples go: the cluster check stores all of them at once. */
  samples: NewTelemetry[],
): Promise<void> {
  const { repos, logger } = deps;
  const jobId = job._id.toString();
  const attemptId = job.currentAttemptId!;
  const attemptIndex = job.attempts.findIndex((a) => a.id === attemptId);
  const attempt = job.attempts[attemptIndex]!;

  // Nodes whose ranks the head's launcher starts (Horovod/MPI) follow the head's state.
  const nodes = settleNodeStates(
    job.spec,
    observations.map((o) => nextNodeState(o, now, deps.lostAfterMisses)),
    observations.map((o) => o.probe !== undefined),
    attempt.nodes.map((n) => n.state),
  );

  // Only what changes the attempt's fate is written at every check; freshness every few (needsWrite).
  const writeNow = needsWrite(attempt.nodes, nodes, now, deps.statusWriteMs);

  // Progress comes from the rank-0 node's metrics file; it only counts as new when the step moved.
  const head = observations.find((o) => o.node.nodeRank === 0)?.probe;
  // Horovod/MPI place ranks themselves (Horovod Elastic may put rank 0 on any node): take the furthest.
  const source =
    frameworkTraits(job.spec).launchOn === "head"
      ? observations
          .map((o) => o.probe)
          .reduce<ProbeResult | undefined>((best, p) => {
            const step = p ? progressFromMetrics(p.metrics, now)?.step : undefined;
            const bestStep = best ? progressFromMetrics(best.metrics, now)?.step : undefined;
            return step !== undefined && (bestStep === undefined || step > bestStep) ? p : best;
          }, undefined)
      : head;
  const progress = source ? progressFromMetrics(source.metrics, now) : undefined;
  if (progress && job.progress && job.progress.step === progress.step) progress.updatedAt = job.progress.updatedAt;
  else if (progress && source) await recordProgressHistory(deps, job, attemptId, source.metrics, now);

  const added = head ? await keepCheckpointsCurrent(deps, job, cluster, attemptIndex, head.announcements) : [];

  // A GPU fault is the root cause whatever the ranks did about it: it goes first.
  // Telemetry samples are stored with the checks that write (exported to Prometheus at every check).
  const gpuFault = await recordTelemetry(deps, job, cluster, attemptIndex, observations, now, writeNow ? samples : undefined);
  const failure: Failure | undefined =
    gpuFault ?? findFailure(job, observations, nodes) ?? (await checkStall(deps, job, attemptIndex, progress?.updatedAt, now));
  if (failure) {
    await repos.jobs.updateAttempt(job._id, attemptId, attemptIndex, { nodes, ...(progress ? { progress } : {}) });
    const decision = decideRetry(
      job.spec.retry ?? DEFAULT_RETRY_POLICY,
      {
        lost: failure.lost === true,
        stalled: failure.stalled === true,
        exitCode: failure.exitCode,
        logTail: nodes.map((n) => n.logTail ?? "").join("\n"),
      },
      // Preempted attempts and launches taken over from a lost launcher use none of the retries.
      failureNumber(job.attempts, attempt.number),
    );
    const { lost: _lost, stalled: _stalled, ...details } = failure;
    const stop = decision.retry
      ? {
          kind: "retry" as const,
          ...details,
          reason: `${failure.reason}; restarting from the latest checkpoint (${decision.why})`,
        }
      : {
          kind: "fail" as const,
          ...details,
          reason: job.spec.retry?.maxRetries ? `${failure.reason} (not retried: ${decision.why})` : failure.reason,
        };
    const requested = await repos.jobs.requestStop(job._id, attemptId, { ...stop, requestedAt: now });
    if (requested) {
      logger.warn(
        { jobId, attemptId, reason: stop.reason },
        decision.retry ? "attempt failed; stopping the gang to retry" : "rank failed; stopping the gang",
      );
      await deps.bus.send("control", { jobId, attemptId });
    }
    return;
  }

  // Horovod Elastic: the head's discovery script lists only the nodes still healthy.
  await updateHostDiscovery(deps.gateway, cluster, job, attempt, nodes, logger);

  if (attemptSucceeded(job.spec, nodes)) {
    // Every rank is done: the attempt's inter-node SSH key (MPI/Horovod) goes now.
    await revokeInterNodeSsh(deps, cluster, job, attempt);
    await finishAttempt(deps, job, {
      status: "SUCCEEDED",
      from: ["RUNNING"],
      at: now,
      attempt: { attemptId, number: attempt.number, outcome: "SUCCEEDED", nodes },
      // Earlier attempts keep their reasons; the job itself no longer shows a failure.
      failure: null,
      ...(progress ? { progress } : {}),
      alert: { type: "job.succeeded", severity: "info", message: `${job.name} succeeded` },
    });
    return;
  }

  const still = writeNow
    ? await repos.jobs.updateAttempt(job._id, attemptId, attemptIndex, { nodes, ...(progress ? { progress } : {}) })
    : true;
  // Marked for preemption: a checkpoint newer than the request (or the grace period's end) stops it.
  const newest = added.reduce<number | undefined>((m, c) => (m === undefined || c.step > m ? c.step : m), undefined);
  if (still) await settlePreemption(deps, job, newest, now);
}

interface Failure {
  reason: string;
  node: string;
  rank?: number;
  exitCode?: number;
  lost?: boolean;
  stalled?: boolean;
}

/** Register new checkpoints and apply retention; a failure here never fails the check. Returns those added. */
async function keepCheckpointsCurrent(
  deps: MonitorDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  attemptIndex: number,
  announced: string[] | undefined,
): Promise<CheckpointDoc[]> {
  try {
    const added = await ingestCheckpoints(deps, job, cluster, attemptIndex, announced);
    if (!added.length) return added;
    // Copies to the job's object store run as their own messages: a big checkpoint never delays checks.
    if (job.spec.checkpoints?.storage) {
      for (const c of added) await deps.bus.send("checkpoints", { jobId: job._id.toString(), checkpointId: c._id.toString() });
    }
    await collectCheckpoints(deps, job, cluster);
    return added;
  } catch (err) {
    deps.logger.warn(
      { jobId: job._id.toString(), err: (err as Error).message },
      "checkpoint bookkeeping failed; will retry next check",
    );
    return [];
  }
}

/**
 * Hang detection: no progress for `hang.stallSeconds` (counted from the last step change, or the
 * attempt's start). With action "restart" it is a failure that retries; with "alert" it alerts once
 * per attempt.
 */
async function checkStall(
  deps: MonitorDeps,
  job: JobDoc,
  attemptIndex: number,
  lastProgressAt: Date | undefined,
  now: Date,
): Promise<Failure | undefined> {
  const hang = job.spec.hang;
  const attempt = job.attempts[attemptIndex]!;
  const since = lastProgressAt ?? attempt.startedAt;
  if (!hang || !since || now.getTime() - new Date(since).getTime() < hang.stallSeconds * 1000) return undefined;
  const head = attempt.nodes.find((n) => n.nodeRank === 0)!;
  const reason = `no progress for ${Math.round((now.getTime() - new Date(since).getTime()) / 1000)} s (stall limit ${hang.stallSeconds} s)`;
  if (hang.action === "restart") return { node: head.name, reason: `job stalled: ${reason}`, stalled: true };
  if (!attempt.stalledAt) {
    await deps.repos.jobs.updateAttempt(job._id, attempt.id, attemptIndex, { stalledAt: now });
    await deps.bus.send("alerts", {
      type: "job.stalled",
      severity: "warning",
      jobId: job._id.toString(),
      message: `${job.name}: ${reason}`,
      at: now.toISOString(),
    });
    deps.logger.warn({ jobId: job._id.toString(), reason }, "job stalled");
  }
  return undefined;
}

/** Why the gang cannot finish, if it cannot, by the framework's rules (@trainyard/frameworks failures.ts). */
export function findFailure(job: JobDoc, observations: NodeObservation[], nodes: AttemptNodeDoc[]): Failure | undefined {
  const observed = nodes.map((n) => {
    const error = observations.find((o) => o.node.name === n.name)?.error;
    return { ...n, ...(error !== undefined ? { error } : {}) };
  });
  return findAttemptFailure(job.spec, observed);
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
  // Not alive and no exit code: the wrapper itself was killed, or its directory is gone. One such
  // probe can also fall in the instant a wrapper ends (seen under heavy load at a job's natural
  // end), so it counts only when the next probe confirms it; a kill is found one interval later.
  const vanished = (node.missedChecks ?? 0) + 1;
  return { ...base, missedChecks: vanished, state: vanished >= VANISHED_CONFIRMATIONS ? "lost" : node.state };
}

/**
 * Whether a check's node states must be written now (pure). What decides an attempt's fate (a
 * node's state, exit code, missed checks or process group, the set of nodes) is written by the
 * check that saw it; what only shows freshness (last seen, log tail, progress) once the stored one
 * is `writeMs` old. Fewer writes is what lets one replica keep a thousand attempts checked.
 */
export function needsWrite(before: AttemptNodeDoc[], after: AttemptNodeDoc[], now: Date, writeMs: number): boolean {
  if (before.length !== after.length) return true;
  return after.some((a, i) => {
    const b = before[i]!;
    if (a.name !== b.name || a.state !== b.state || a.exitCode !== b.exitCode || a.pgid !== b.pgid) return true;
    if ((a.missedChecks ?? 0) !== (b.missedChecks ?? 0)) return true;
    return a.lastSeenAt !== undefined && (!b.lastSeenAt || now.getTime() - new Date(b.lastSeenAt).getTime() >= writeMs);
  });
}

/** Probes in a row that must find a node's processes gone without an exit code before it is lost. */
export const VANISHED_CONFIRMATIONS = 2;
