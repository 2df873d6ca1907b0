import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import type { Types } from "mongoose";

/**
 * Offer every QUEUED job of a cluster to the launcher again, oldest first. Called whenever
 * capacity may have freed; duplicates are harmless because claiming a job is conditional.
 */
export async function offerQueuedJobs(repos: Repos, bus: QueueBus, clusterId: Types.ObjectId): Promise<number> {
  const queued = await repos.jobs.listByCluster(clusterId, ["QUEUED"]);
  for (const job of queued) await bus.send("launch", { jobId: job._id.toString() });
  return queued.length;
}

/** Release a job's reservation and let waiting jobs try the freed capacity. */
export async function releaseAndOffer(repos: Repos, bus: QueueBus, clusterId: Types.ObjectId, jobId: string): Promise<void> {
  await repos.clusters.release(clusterId, jobId);
  await offerQueuedJobs(repos, bus, clusterId);
}
