import { DEFAULT_RETRY_POLICY, failureNumber, type StopKind, type TerminalStatus } from "@trainyard/common";
import { finishAttempt, revokeInterNodeSsh, stopAttemptNodes } from "@trainyard/core";
import { retryDelayMs } from "@trainyard/frameworks";
import type { LauncherDeps } from "../deps";

/** Alert types of stops that are not failures (a budget stop is its own event). */
const ALERT_OF_STOP: Partial<Record<StopKind, "job.cancelled" | "budget.stop">> = {
  cancel: "job.cancelled",
  budget: "budget.stop",
};

/**
 * The job status a stop leads to; "retry" leaves the job RETRYING for its next attempt, "preempt"
 * puts it back in the queue (QUEUED) to resume later from its latest checkpoint.
 */
const OUTCOME: Record<StopKind, TerminalStatus | "RETRYING" | "QUEUED"> = {
  cancel: "CANCELLED",
  fail: "FAILED",
  budget: "STOPPED_BUDGET",
  retry: "RETRYING",
  preempt: "QUEUED",
};

/** A retryable "not yet": the control message is redelivered with backoff. */
export class StopNotPossibleYet extends Error {}

/**
 * Carry out a job's stop request (cancel, failure teardown, budget stop, preemption): TERM the process group on
 * every node, KILL after the grace period, verify nothing of the attempt is left, then record the
 * terminal status and free the reservation.
 */
export async function stopAttempt(deps: LauncherDeps, jobId: string, attemptId: string): Promise<void> {
  const { repos } = deps;
  const job = await repos.jobs.byId(jobId);
  if (!job || job.currentAttemptId !== attemptId) return; // stale message
  if (job.status === "LAUNCHING") throw new StopNotPossibleYet("attempt is still launching; will stop once it runs");
  if (job.status !== "RUNNING" || !job.stopRequest) return;
  const cluster = await repos.clusters.byId(job.clusterId);
  if (!cluster) return;
  const attempt = job.attempts.find((a) => a.id === attemptId)!;
  const stop = job.stopRequest;

  const results = await stopAttemptNodes(
    deps,
    cluster,
    job,
    attempt,
    attempt.nodes.map((n) => n.name),
  );
  const survivors = results.filter((r) => r.survivors.length);
  if (survivors.length) {
    throw new Error(
      `processes of attempt ${attemptId} survived KILL on ${survivors.map((s) => `${s.node} (${s.survivors.join(",")})`).join("; ")}`,
    );
  }
  const unreachable = results.filter((r) => r.error);
  // An unreachable node cannot be verified clean; a cancel waits for it (retries), a failure or
  // retry teardown proceeds since that node is usually the reason for the failure.
  if (unreachable.length && stop.kind !== "fail" && stop.kind !== "retry") {
    throw new StopNotPossibleYet(`cannot reach ${unreachable.map((u) => `${u.node}: ${u.error}`).join("; ")}`);
  }
  // The attempt's inter-node SSH key (MPI/Horovod) ends with it, on every node that can be reached.
  await revokeInterNodeSsh(deps, cluster, job, attempt);

  const outcome = OUTCOME[stop.kind];
  const retrying = outcome === "RETRYING";
  const preempted = outcome === "QUEUED";
  const failed = stop.kind === "fail" || retrying;
  const now = new Date();
  const reason =
    stop.reason + (unreachable.length ? ` (could not verify ${unreachable.map((u) => u.node).join(", ")}: unreachable)` : "");
  await finishAttempt(deps, job, {
    status: outcome,
    from: ["RUNNING"],
    at: now,
    attempt: {
      attemptId,
      number: attempt.number,
      outcome: retrying ? "FAILED" : preempted ? "PREEMPTED" : outcome,
      reason,
      ...(failed && stop.node ? { failedNode: stop.node } : {}),
      nodes: attempt.nodes.map((n) => ({
        ...n,
        state: n.state === "exited" ? "exited" : unreachable.some((u) => u.node === n.name) ? "unreachable" : "stopped",
      })),
    },
    ...(failed ? { failure: { reason: stop.reason, node: stop.node, rank: stop.rank, exitCode: stop.exitCode } } : {}),
    ...(retrying
      ? {
          retryAt: new Date(
            now.getTime() + retryDelayMs(job.spec.retry ?? DEFAULT_RETRY_POLICY, failureNumber(job.attempts, attempt.number)),
          ),
        }
      : {}),
    unverifiedNodes: unreachable.map((u) => u.node),
    // Preemption is the scheduler's decision, not an incident: logged and shown on the attempt, no alert.
    ...(preempted
      ? {}
      : {
          alert: {
            type: ALERT_OF_STOP[stop.kind] ?? (retrying ? "job.retrying" : "job.failed"),
            severity: stop.kind === "cancel" ? "info" : retrying ? "warning" : "critical",
            message: `${job.name}: ${reason}`,
          },
        }),
  });
}
