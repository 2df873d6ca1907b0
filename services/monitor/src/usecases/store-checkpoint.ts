import { copyCheckpointToStore } from "@trainyard/core";
import type { MonitorDeps } from "../deps";

/** Copy one registered checkpoint to its job's object store (retried by the queue on failure). */
export async function storeCheckpoint(deps: MonitorDeps, jobId: string, checkpointId: string): Promise<void> {
  const job = await deps.repos.jobs.byId(jobId);
  if (!job) return;
  const ck = await deps.repos.checkpoints.get(job._id, checkpointId);
  if (!ck || ck.state !== "complete") return; // deleted by retention meanwhile
  const cluster = await deps.repos.clusters.byId(job.clusterId);
  if (!cluster) return;
  const uri = await copyCheckpointToStore(deps, job, cluster, ck);
  if (uri) deps.logger.info({ jobId, step: ck.step, uri }, "checkpoint copied to object store");
}
