import type { JobStatus, Logger, QueuePayload, TerminalStatus } from "@trainyard/common";
import type { AttemptEnd, JobDoc, JobFailure, Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import { requestSchedulingPass } from "./scheduling";

export interface LifecycleDeps {
  repos: Repos;
  bus: QueueBus;
  logger: Logger;
}

/** How a job's current attempt (or, before any attempt ran, the waiting job itself) ends. */
export interface Ending {
  /**
   * What the job becomes; RETRYING: the attempt failed and another starts after `retryAt`; QUEUED:
   * back in the queue: from LAUNCHING, the attempt never got going (its launcher was lost) and the
   * job waits at its place; from RUNNING, the attempt was preempted (outcome PREEMPTED) and the job
   * resumes from its latest checkpoint when it is admitted again.
   */
  status: TerminalStatus | "RETRYING" | "QUEUED";
  /** The statuses the job may be in for this ending to apply (the change is conditional on them). */
  from: readonly JobStatus[];
  at: Date;
  /** The attempt that ends, when one was launched; the change then applies only while it is current. */
  attempt?: AttemptEnd & { number: number };
  /** Shown on the job; null clears an earlier attempt's failure (a success after retries). */
  failure?: JobFailure | null;
  progress?: JobDoc["progress"];
  /** When the next attempt is due (RETRYING only). */
  retryAt?: Date;
  /** Nodes where the attempt could not be verified stopped: their GPUs and ports stay held. */
  unverifiedNodes?: string[];
  /** The alert this ending raises (its jobId and time are filled in). */
  alert?: Omit<QueuePayload<"alerts">, "jobId" | "at">;
}

/**
 * End a job's attempt, the single way every service does it (launcher: failed launch, stop,
 * a launch taken over from a lost launcher;
 * monitor: success; cost: budget stop of a waiting job; API: cancel of a waiting job):
 *   1. the status change, conditional on `from` and the attempt being current: of racing
 *      replicas exactly one gets past it, and only that one does the rest;
 *   2. the reservation is freed (except on unverified nodes) and a scheduling pass is requested;
 *   3. a cost `ended` event when the attempt ran (a `started` one was sent when it began);
 *   4. the next attempt's delayed launch, when retrying (a preempted job waits for a pass instead);
 *   5. the alert.
 * Returns the updated job, or null when another actor moved it first (nothing else is done).
 */
export async function finishAttempt(deps: LifecycleDeps, job: JobDoc, ending: Ending): Promise<JobDoc | null> {
  const { repos, bus, logger } = deps;
  const jobId = job._id.toString();
  const { attempt, at } = ending;
  let done: JobDoc | null;
  if (ending.status === "RETRYING") {
    if (!attempt || !ending.retryAt || !ending.failure) throw new Error("a retry needs the failed attempt, retryAt and failure");
    done = await repos.jobs.requeue(job, attempt, { at, retryAt: ending.retryAt, failure: ending.failure });
  } else if (ending.status === "QUEUED") {
    if (!attempt) throw new Error("going back to the queue needs the attempt that ends");
    done = ending.from.includes("LAUNCHING")
      ? await repos.jobs.relaunch(job, attempt, at)
      : await repos.jobs.preempted(job, attempt, { at, waitingReason: `${attempt.reason ?? "preempted"}; back in the queue` });
  } else {
    done = await repos.jobs.finish(job, ending.from, ending.status, {
      at,
      ...(attempt ? { attempt } : {}),
      ...(ending.failure !== undefined ? { failure: ending.failure } : {}),
      ...(ending.progress ? { progress: ending.progress } : {}),
    });
  }
  if (!done) return null;
  const reason = attempt?.reason ?? ending.failure?.reason;
  const quiet = ending.status === "SUCCEEDED" || ending.status === "CANCELLED" || ending.status === "QUEUED";
  logger[quiet ? "info" : "warn"]({ jobId, attemptId: attempt?.attemptId, status: ending.status, reason }, "attempt ended");

  const unverified = ending.unverifiedNodes ?? [];
  if (attempt && unverified.length) {
    // What runs on an unreachable node may still hold its GPUs and ports: keep those held until a
    // later clean-up verifies the node, so a retry can never collide with leftovers.
    await repos.clusters.releaseExcept(job.clusterId, jobId, attempt.attemptId, unverified);
  } else {
    await repos.clusters.release(job.clusterId, jobId);
  }
  // Freed capacity, or a place at the head of the queue: either may let the jobs behind it start.
  await requestSchedulingPass(bus, job.clusterId);
  if (attempt && ending.from.includes("RUNNING")) await bus.send("cost", { jobId, event: "ended", at: at.toISOString() });
  if (ending.status === "RETRYING" && attempt && ending.retryAt) {
    const delay = Math.max(0, ending.retryAt.getTime() - at.getTime());
    await bus.send("launch", { jobId }, { delay, jobId: `retry-${jobId}-${attempt.number + 1}` });
  }
  if (ending.alert) await bus.send("alerts", { ...ending.alert, jobId, at: at.toISOString() });
  return done;
}
