import type { Logger } from "@trainyard/common";
import type { Repos } from "@trainyard/db";
import { attemptDir } from "@trainyard/frameworks";
import type { QueueBus } from "@trainyard/runtime";
import type { Types } from "mongoose";
import type { NodeGateway } from "./node-gateway";

/**
 * Coalescing slot of scheduling-pass requests: every request made during one slot is served by one
 * pass that starts when the slot ends.
 */
export const SCHEDULE_SLOT_MS = 200;

/**
 * Ask for a scheduling pass of a cluster (capacity may have changed: a submit, a job's end, a
 * cancel, a quota or cluster change). Requests are coalesced, not queued per job: the message id is
 * `sched-<clusterId>-<slot>` and the message is delayed to the end of its slot, so however many
 * requests arrive in a slot, one message exists for it, and it starts only after every request of
 * that slot was made (the pass sees each change). Messages grow O(changes / slot), never O(jobs²).
 */
export function requestSchedulingPass(bus: QueueBus, clusterId: Types.ObjectId | string, now = Date.now()): Promise<void> {
  const slot = Math.floor(now / SCHEDULE_SLOT_MS);
  const id = clusterId.toString();
  // This process sends a slot's message once: a busy API asks once per submit (hundreds a slot),
  // and every repeat would cost a Redis round trip for BullMQ to find the id taken.
  const byCluster = requestedSlots.get(bus) ?? new Map<string, { slot: number; sent: Promise<void> }>();
  requestedSlots.set(bus, byCluster);
  const last = byCluster.get(id);
  if (last?.slot === slot) return last.sent;
  const sent = bus.send(
    "schedule",
    { clusterId: id },
    { jobId: `sched-${id}-${slot}`, delay: (slot + 1) * SCHEDULE_SLOT_MS - now },
  );
  const entry = { slot, sent };
  byCluster.set(id, entry);
  // A send that failed is not remembered: the next request of the slot tries again.
  sent.catch(() => {
    if (byCluster.get(id) === entry) byCluster.delete(id);
  });
  return sent;
}

/** Per bus (so per queue prefix), the slot this process last asked each cluster's pass for. */
const requestedSlots = new WeakMap<QueueBus, Map<string, { slot: number; sent: Promise<void> }>>();

/** What orders a cluster's queue. Jobs stored before priorities existed count as priority 0. */
export interface Queued {
  _id: Types.ObjectId;
  createdAt: Date;
  priority?: number;
  spec?: { priority?: number };
}

export const priorityOf = (j: Queued): number => j.priority ?? j.spec?.priority ?? 0;

/**
 * A submitted job spec with the team's default priority filled in where the user gave none. Only an
 * absent `priority` is filled: an explicit one (even 0) is kept.
 */
export function withDefaultPriority<S extends { priority?: number }>(spec: S, teamDefault: number): S & { priority: number } {
  return { ...spec, priority: spec.priority ?? teamDefault };
}

/** Queue order: priority descending, then submit time (oldest first), then id. */
export function compareQueued(a: Queued, b: Queued): number {
  return (
    priorityOf(b) - priorityOf(a) ||
    new Date(a.createdAt).getTime() - new Date(b.createdAt).getTime() ||
    a._id.toString().localeCompare(b._id.toString())
  );
}

/**
 * Try again to stop attempts that could not be verified stopped on some node (it was unreachable).
 * Once a node answers and nothing of the attempt is left there, its held GPUs and ports are freed.
 */
export async function cleanUpHeldAllocations(deps: {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
}): Promise<void> {
  for (const { cluster, held } of await deps.repos.clusters.listHeld()) {
    const jobId = held.jobId;
    let clean = true;
    for (const n of held.nodes) {
      const node = cluster.nodes.find((x) => x.name === n.node);
      if (!node) continue;
      try {
        const out = await deps.gateway.stop(cluster, n.node, attemptDir(node.workRoot, jobId, held.attemptId), held.attemptId);
        if (out.survivors.length) clean = false;
      } catch {
        clean = false; // still unreachable
      }
    }
    if (clean) {
      await deps.repos.clusters.releaseHeld(cluster._id, jobId, held.attemptId);
      await requestSchedulingPass(deps.bus, cluster._id);
      deps.logger.info(
        { jobId, attemptId: held.attemptId, nodes: held.nodes.map((n) => n.node) },
        "held resources verified clean and freed",
      );
    }
  }
}

const jobs = (n: number) => `${n} job${n === 1 ? "" : "s"}`;

/**
 * What a waiting job waits for, from its place in the queue and the reason the last scheduling
 * pass recorded on it (capacity when it was the head, or its team's quota). Reasons are written
 * only for the head and for quota-held jobs, so a pass costs O(1) writes, not one per queued job.
 */
export function explainWait(
  job: { status: string; waitingReason?: string; retryAt?: Date | string; clusterName: string },
  place: { ahead: number; higher: number },
  now = Date.now(),
): string {
  const stored = job.waitingReason;
  const retryAt = job.retryAt ? new Date(job.retryAt) : undefined;
  if (job.status === "RETRYING" && retryAt && retryAt.getTime() > now)
    return `retry backoff: the next attempt is due at ${retryAt.toISOString()}`;
  if (place.ahead === 0) return stored ?? "first in the queue: waiting for the next scheduling pass";
  const behind = `behind ${jobs(place.ahead)} in cluster '${job.clusterName}' queue${
    place.higher ? ` (${place.higher} of higher priority)` : ""
  }`;
  return stored ? `${behind}; last seen ${stored}` : behind;
}
