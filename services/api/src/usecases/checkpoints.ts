import { type CheckpointView, conflict, notFound, TERMINAL_STATUSES, UserError } from "@trainyard/common";
import { deleteFromStorage } from "@trainyard/core";
import type { CheckpointDoc } from "@trainyard/db";
import type { ApiDeps } from "../context";

export function checkpointView(c: CheckpointDoc): CheckpointView {
  return {
    id: c._id.toString(),
    jobId: c.jobId.toString(),
    attemptId: c.attemptId,
    attemptNumber: c.attemptNumber,
    step: c.step,
    node: c.node,
    path: c.path,
    uri: c.uri,
    size: c.size,
    ...(c.storedUri ? { storedUri: c.storedUri } : {}),
    metrics: Object.fromEntries(c.metrics.map((m) => [m.name, m.value])),
    state: c.state,
    createdAt: new Date(c.createdAt).toISOString(),
  };
}

/** A job's checkpoints, newest first (including any still being deleted). */
export async function listCheckpoints(deps: ApiDeps, team: string, jobId: string): Promise<{ items: CheckpointView[] }> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  return { items: (await deps.repos.checkpoints.listAll(job._id)).map(checkpointView) };
}

export async function latestCheckpoint(deps: ApiDeps, team: string, jobId: string): Promise<CheckpointView> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  const latest = await deps.repos.checkpoints.latestComplete(job._id);
  if (!latest) throw notFound(`a complete checkpoint of job '${jobId}'`);
  return checkpointView(latest);
}

/**
 * Delete one checkpoint (two-phase, like retention). The latest complete checkpoint is refused
 * while the job can still resume from it.
 */
export async function deleteCheckpoint(deps: ApiDeps, team: string, jobId: string, checkpointId: string): Promise<void> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  const ck = await deps.repos.checkpoints.get(job._id, checkpointId);
  if (!ck) throw notFound(`checkpoint '${checkpointId}'`);
  const latest = await deps.repos.checkpoints.latestComplete(job._id);
  if (latest?._id.equals(ck._id) && !TERMINAL_STATUSES.has(job.status)) {
    throw conflict("this is the job's latest complete checkpoint; it cannot be deleted while the job can resume from it");
  }
  const cluster = await deps.repos.clusters.byId(job.clusterId);
  if (!cluster) throw new UserError(409, "the job's cluster no longer exists");
  if (ck.state === "complete" && !(await deps.repos.checkpoints.markDeleting(ck._id))) return;
  if (!(await deleteFromStorage(deps, job, cluster, { ...ck, state: "deleting" }))) {
    throw new UserError(
      409,
      `node ${ck.node} could not be reached; the checkpoint stays marked for deletion and is removed by the next clean-up`,
    );
  }
}
