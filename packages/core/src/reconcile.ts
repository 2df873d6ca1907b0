import { randomBytes } from "node:crypto";
import type { StopKind, TerminalStatus } from "@trainyard/common";
import { currentAttempt, type JobDoc, type LaunchLease } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import { sweepPendingSshKeys } from "./inter-node-ssh";
import { finishAttempt, type LifecycleDeps } from "./lifecycle";
import type { NodeGateway } from "./node-gateway";
import { cleanUpHeldAllocations, requestSchedulingPass } from "./scheduling";
import { stopAttemptNodes } from "./stop-nodes";

/*
 * The reconciler: MongoDB is the truth, Redis only carries messages about it. Each worker service
 * runs its sweep once at start and every RECONCILE_INTERVAL_MS (runtime's startReconciler), and
 * re-creates from the database every message its work depends on. Every message it sends has a
 * stable or per-slot id, so a sweep that finds nothing lost adds nothing.
 */

/** A PENDING job older than this was stored by a request that died before queueing it. */
const PENDING_GRACE_MS = 30_000;

/** The launch lease of one launcher process: its owner id is fixed for the process's life. */
export interface LeaseSettings {
  owner: string;
  ms: number;
}

export function newLeaseOwner(service: string): string {
  return `${service}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

export const leaseFrom = (s: LeaseSettings, now = Date.now()): LaunchLease => ({ owner: s.owner, until: new Date(now + s.ms) });

/**
 * A LAUNCHING attempt whose launcher stopped renewing its lease (killed, or cut off from the
 * database): no live process is starting it any more. An attempt launched before leases existed
 * counts from its creation.
 */
export function launchAbandoned(job: JobDoc, leaseMs: number, now = Date.now()): boolean {
  if (job.status !== "LAUNCHING") return false;
  if (job.launchLeaseUntil) return new Date(job.launchLeaseUntil).getTime() < now;
  const created = currentAttempt(job)?.createdAt;
  return !created || new Date(created).getTime() + leaseMs < now;
}

const STOPPED_BY: Partial<Record<StopKind, TerminalStatus>> = { cancel: "CANCELLED", budget: "STOPPED_BUDGET", fail: "FAILED" };

/**
 * Take over a launch whose launcher was lost: claim its lease (one reconciler wins), stop whatever
 * of the attempt started on any node and verify it gone, then put the job back in its queue for a
 * fresh attempt (or end it, when a stop was requested meanwhile). A node that cannot be reached
 * keeps its GPUs and ports held until it is verified clean, so the next gang can never meet the old one.
 */
export async function takeOverLaunch(
  deps: LifecycleDeps & { gateway: NodeGateway },
  job: JobDoc,
  lease: LeaseSettings,
): Promise<boolean> {
  const { repos, logger } = deps;
  const attempt = currentAttempt(job);
  if (!attempt) return false;
  const taken = await repos.jobs.takeOverLaunch(job, attempt.id, leaseFrom(lease));
  if (!taken) return false;
  const jobId = job._id.toString();
  logger.warn({ jobId, attemptId: attempt.id, lostOwner: job.launchLeaseOwner }, "launcher lost while launching; taking over");
  const cluster = await repos.clusters.byId(job.clusterId);
  const results = cluster
    ? await stopAttemptNodes(
        deps,
        cluster,
        taken,
        attempt,
        attempt.nodes.map((n) => n.name),
      )
    : [];
  if (results.some((r) => r.survivors.length)) {
    // Not verified stopped: leave the lease to expire, and the next sweep tries again.
    logger.error({ jobId, results }, "processes of an abandoned launch survived KILL; retrying the take-over later");
    return false;
  }
  const unverified = results.filter((r) => r.error).map((r) => r.node);
  const reason = `the launcher starting this attempt was lost; ${
    unverified.length
      ? `could not verify ${unverified.join(", ")} (unreachable; held until verified)`
      : "nothing of it is left on its nodes"
  }`;
  const stop = taken.stopRequest?.kind ? STOPPED_BY[taken.stopRequest.kind] : undefined;
  const at = new Date();
  const ended = await finishAttempt(deps, taken, {
    status: stop ?? "QUEUED",
    from: ["LAUNCHING"],
    at,
    attempt: {
      attemptId: attempt.id,
      number: attempt.number,
      outcome: stop ?? "FAILED",
      reason,
      nodes: attempt.nodes.map((n) => ({ ...n, state: unverified.includes(n.name) ? "unreachable" : "stopped" })),
    },
    ...(stop && taken.stopRequest ? { failure: { reason: taken.stopRequest.reason } } : {}),
    unverifiedNodes: unverified,
  });
  return ended !== null;
}

/**
 * The launcher's sweep. Rebuilds: the queueing of jobs whose submit died half-way; one scheduling
 * pass per cluster with QUEUED jobs or overdue retries; the take-over of launches whose launcher
 * was lost; the control message of every stop requested of a running attempt; and the clean-ups
 * that wait for unreachable nodes (held GPUs, inter-node SSH keys).
 */
export async function reconcileLauncher(
  deps: LifecycleDeps & { gateway: NodeGateway },
  opts: { lease: LeaseSettings; intervalMs: number },
): Promise<void> {
  const { repos, bus } = deps;
  const now = Date.now();
  for (const job of await repos.jobs.listByStatus(["PENDING"])) {
    if (now - new Date(job.createdAt).getTime() > PENDING_GRACE_MS) await repos.jobs.queue(job._id);
  }
  // One pass per cluster that has a queued job or an overdue retry (never one message per job).
  const clusters = new Set<string>();
  for (const job of await repos.jobs.listByStatus(["RETRYING"])) {
    if (!job.retryAt || new Date(job.retryAt).getTime() < now - 5_000) clusters.add(job.clusterId.toString());
  }
  for (const id of await repos.jobs.clustersWith(["QUEUED"])) clusters.add(id);
  for (const id of clusters) await requestSchedulingPass(bus, id);

  for (const job of await repos.jobs.listByStatus(["LAUNCHING"])) {
    if (launchAbandoned(job, opts.lease.ms, now)) await takeOverLaunch(deps, job, opts.lease);
  }
  // A stop requested of a running attempt whose control message was lost (one id per sweep slot).
  const slot = Math.floor(now / opts.intervalMs);
  for (const job of await repos.jobs.runningWithStopRequest()) {
    if (job.currentAttemptId) {
      await bus.send(
        "control",
        { jobId: job._id.toString(), attemptId: job.currentAttemptId },
        { jobId: `ctl-${job.currentAttemptId}-${slot}` },
      );
    }
  }
  await sweepPendingSshKeys(deps);
  await cleanUpHeldAllocations(deps);
}

/**
 * The next check of a cluster's running attempts (one probe per node, for all of them), due one
 * interval after `from`. Its message id names the interval slot it falls in, so however many
 * replicas, sweeps and new attempts ask, a cluster has at most one check per slot; a check never
 * starts before its slot does, so one asked for the next slot is never one already running.
 */
export async function scheduleClusterCheck(
  bus: QueueBus,
  intervalMs: number,
  clusterId: string,
  from = Date.now(),
): Promise<void> {
  const slot = Math.floor(from / intervalMs) + 1;
  await bus.send(
    "cluster-checks",
    { clusterId },
    { delay: Math.max(0, from + intervalMs - Date.now()), jobId: `mon-${clusterId}-${slot}` },
  );
}

/** The monitor's sweep: every cluster with a RUNNING job has its next check scheduled. */
export async function reconcileMonitor(deps: Pick<LifecycleDeps, "repos" | "bus">, intervalMs: number): Promise<number> {
  const clusters = await deps.repos.jobs.clustersWith(["RUNNING"]);
  for (const id of clusters) await scheduleClusterCheck(deps.bus, intervalMs, id);
  return clusters.length;
}

/** Id of the one BullMQ job scheduler that produces the cost ticks of an installation. */
export const COST_TICK_SCHEDULER = "cost-tick";

/**
 * The cost service's sweep: the installation's cost-tick scheduler exists. Every replica upserts
 * the same id, so ticks are never multiplied by the replica count; `force` (at start) applies the
 * latest COST_INTERVAL_MS, later sweeps only re-create a scheduler that Redis lost.
 */
export async function reconcileCost(bus: QueueBus, everyMs: number, force = false): Promise<void> {
  const queue = bus.queue("cost");
  if (!force && (await queue.getJobScheduler(COST_TICK_SCHEDULER))) return;
  await queue.upsertJobScheduler(
    COST_TICK_SCHEDULER,
    { every: everyMs },
    { name: "cost", data: { event: "tick", at: new Date().toISOString() } },
  );
}
