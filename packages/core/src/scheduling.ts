import type { Logger } from "@trainyard/common";
import type { Repos } from "@trainyard/db";
import { attemptDir } from "@trainyard/frameworks";
import type { QueueBus } from "@trainyard/runtime";
import type { Types } from "mongoose";
import type { NodeGateway } from "./node-gateway";

/**
 * Offer every QUEUED job (and every retry whose backoff is over) of a cluster to the launcher again, oldest first. Called whenever
 * capacity may have freed; duplicates are harmless because claiming a job is conditional.
 */
export async function offerQueuedJobs(repos: Repos, bus: QueueBus, clusterId: Types.ObjectId): Promise<number> {
  const waiting = (await repos.jobs.listByCluster(clusterId, ["QUEUED", "RETRYING"])).filter(
    (j) => j.status === "QUEUED" || !j.retryAt || new Date(j.retryAt).getTime() <= Date.now(),
  );
  for (const job of waiting) await bus.send("launch", { jobId: job._id.toString() });
  return waiting.length;
}

/** Release a job's reservation and let waiting jobs try the freed capacity. */
export async function releaseAndOffer(repos: Repos, bus: QueueBus, clusterId: Types.ObjectId, jobId: string): Promise<void> {
  await repos.clusters.release(clusterId, jobId);
  await offerQueuedJobs(repos, bus, clusterId);
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
  for (const { cluster, held, jobId } of await deps.repos.clusters.listHeld()) {
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
      await releaseAndOffer(deps.repos, deps.bus, cluster._id, held.jobId);
      deps.logger.info(
        { jobId, attemptId: held.attemptId, nodes: held.nodes.map((n) => n.node) },
        "held resources verified clean and freed",
      );
    }
  }
}
