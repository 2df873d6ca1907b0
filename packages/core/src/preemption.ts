import { DEFAULT_PREEMPTION_POLICY } from "@trainyard/common";
import type { AllocationDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { allocate } from "@trainyard/frameworks";
import type { LifecycleDeps } from "./lifecycle";
import { priorityOf } from "./scheduling";

type GangRequest = Parameters<typeof allocate>[0];

/** What the head of a cluster's queue can expect from preemption. */
export type PreemptionPlan =
  /** Jobs already on their way out (being preempted or stopped) free enough: wait for them. */
  | { kind: "wait"; pending: JobDoc[] }
  /** Preempting these (fewest, lowest priority, youngest) lets the head fit. */
  | { kind: "preempt"; victims: JobDoc[] }
  /** Nothing preemptible would make room. */
  | { kind: "none" };

/** A running job's release is already under way: a stop, or a preemption waiting for its checkpoint. */
const leaving = (j: JobDoc) => Boolean(j.stopRequest?.kind || j.preemptRequest?.byJobId);

/**
 * Which running jobs to preempt so that the head of the queue fits (pure). Only RUNNING jobs marked
 * `preemptible` of strictly lower priority are candidates. Jobs already leaving count as freed, so
 * passes that run again while a victim waits for its checkpoint preempt nothing more. Victims are
 * taken lowest priority first, then youngest (least work lost), until the head fits; then any that
 * turned out unnecessary are dropped again, so the set is minimal.
 */
export function planPreemption(
  head: JobDoc,
  request: GangRequest,
  cluster: Pick<ClusterDoc, "nodes" | "ports" | "allocations">,
  running: JobDoc[],
): PreemptionPlan {
  const fits = (gone: Set<string>) =>
    allocate(
      request,
      cluster,
      cluster.allocations.filter((a: AllocationDoc) => a.held || !gone.has(a.jobId)),
    ).ok;
  const pending = running.filter(leaving);
  const freed = new Set(pending.map((j) => j._id.toString()));
  if (pending.length && fits(freed)) return { kind: "wait", pending };

  const headPriority = priorityOf(head);
  const candidates = running
    .filter((j) => j.status === "RUNNING" && j.spec.preemptible === true && !leaving(j) && priorityOf(j) < headPriority)
    .sort((a, b) => priorityOf(a) - priorityOf(b) || startedAt(b) - startedAt(a));
  const victims: JobDoc[] = [];
  const gone = new Set(freed);
  for (const c of candidates) {
    if (fits(gone)) break;
    victims.push(c);
    gone.add(c._id.toString());
  }
  if (!victims.length || !fits(gone)) return { kind: "none" };
  // Drop victims the head does not need after all (the most valuable first: last taken).
  for (const v of [...victims].reverse()) {
    const without = new Set(gone);
    without.delete(v._id.toString());
    if (fits(without)) {
      gone.delete(v._id.toString());
      victims.splice(victims.indexOf(v), 1);
    }
  }
  return { kind: "preempt", victims };
}

function startedAt(j: JobDoc): number {
  const a = j.attempts.find((x) => x.id === j.currentAttemptId);
  return new Date(a?.startedAt ?? j.startedAt ?? j.createdAt).getTime();
}

/**
 * Preempt `victim` for `head`: at once (`preemption.mode` "immediate": a stop request the launcher
 * carries out), or at its next checkpoint (a preemption request the monitor turns into a stop once a
 * new checkpoint is registered or the grace period ends). Both writes are conditional, so of
 * launchers racing, one marks each victim. Returns whether this call marked it.
 */
export async function preemptJob(deps: LifecycleDeps, victim: JobDoc, head: JobDoc, now = new Date()): Promise<boolean> {
  const { repos, bus, logger } = deps;
  const policy = victim.spec.preemption ?? DEFAULT_PREEMPTION_POLICY;
  const jobId = victim._id.toString();
  const attemptId = victim.currentAttemptId;
  if (!attemptId) return false;
  const by = `job '${head.name}' (${head._id.toString()})`;
  if (policy.mode === "immediate") {
    const stopped = await repos.jobs.requestStop(victim._id, attemptId, {
      kind: "preempt",
      reason: `preempted by ${by}, immediately`,
      requestedAt: now,
    });
    if (!stopped) return false;
    logger.warn({ jobId, attemptId, by: head._id.toString() }, "preempting at once");
    await bus.send("control", { jobId, attemptId });
    return true;
  }
  const marked = await repos.jobs.requestPreemption(victim, {
    byJobId: head._id.toString(),
    byJobName: head.name,
    requestedAt: now,
    deadline: new Date(now.getTime() + policy.graceSeconds * 1000),
  });
  if (marked) logger.warn({ jobId, attemptId, by: head._id.toString() }, "preemption requested: stops at its next checkpoint");
  return marked !== null;
}

/**
 * The monitor's side of a checkpoint-aware preemption, at each check of a marked attempt: stop it
 * when a checkpoint newer than the request was registered (`newCheckpointStep`) or the grace period
 * is over; drop the mark when the job it made room for no longer waits. Returns true when a stop was
 * requested (the check ends there).
 */
export async function settlePreemption(
  deps: LifecycleDeps,
  job: JobDoc,
  newCheckpointStep: number | undefined,
  now = new Date(),
): Promise<boolean> {
  const req = job.preemptRequest;
  const attemptId = job.currentAttemptId;
  if (!req?.byJobId || !attemptId) return false;
  const { repos, bus, logger } = deps;
  const head = await repos.jobs.byId(req.byJobId);
  if (!head || !["QUEUED", "RETRYING"].includes(head.status)) {
    await repos.jobs.clearPreemption(job._id, attemptId);
    logger.info({ jobId: job._id.toString(), by: req.byJobId }, "preemption dropped: the job it made room for no longer waits");
    return false;
  }
  const due = new Date(req.deadline).getTime() <= now.getTime();
  if (newCheckpointStep === undefined && !due) return false;
  const by = `job '${req.byJobName}' (${req.byJobId})`;
  const reason =
    newCheckpointStep !== undefined
      ? `preempted by ${by} at its checkpoint at step ${newCheckpointStep}`
      : `preempted by ${by}: no new checkpoint within the grace period`;
  const stopped = await repos.jobs.requestStop(job._id, attemptId, { kind: "preempt", reason, requestedAt: now });
  if (!stopped) return false;
  logger.warn({ jobId: job._id.toString(), attemptId, reason }, "preempting");
  await bus.send("control", { jobId: job._id.toString(), attemptId });
  return true;
}
