import type { CheckpointPolicy, Logger } from "@trainyard/common";
import type { CheckpointDoc, ClusterDoc, JobDoc, Repos } from "@trainyard/db";
import {
  announcementsCommand,
  attemptDir,
  isManagedCheckpointPath,
  parseCheckpointAnnouncements,
  parseStatPaths,
  removePathCommand,
  scanCheckpointsCommand,
  statPathsCommand,
} from "@trainyard/frameworks";
import { checkpointDirFor } from "./checkpoint-dir";
import { deleteStoredCopy } from "./checkpoint-store";
import type { NodeGateway } from "./node-gateway";

/**
 * Which complete checkpoints retention removes (pure). The newest is always kept while the job can
 * resume; keepLast keeps the N newest, keepBest the K best by a metric; with neither, all are kept.
 */
export function checkpointsToDelete(complete: CheckpointDoc[], policy: CheckpointPolicy): CheckpointDoc[] {
  if (!policy.keepLast && !policy.keepBest) return [];
  const newestFirst = [...complete].sort((a, b) => b.step - a.step || +new Date(b.createdAt) - +new Date(a.createdAt));
  const keep = new Set<string>();
  if (newestFirst[0]) keep.add(newestFirst[0]._id.toString());
  if (policy.keepLast) for (const c of newestFirst.slice(0, policy.keepLast)) keep.add(c._id.toString());
  if (policy.keepBest) {
    const { metric, count, mode } = policy.keepBest;
    const scored = newestFirst
      .map((c) => ({ c, v: c.metrics.find((m) => m.name === metric)?.value }))
      .filter((x): x is { c: CheckpointDoc; v: number } => x.v !== undefined)
      .sort((a, b) => (mode === "min" ? a.v - b.v : b.v - a.v));
    for (const { c } of scored.slice(0, count)) keep.add(c._id.toString());
  }
  return newestFirst.filter((c) => !keep.has(c._id.toString()));
}

export interface CheckpointDeps {
  repos: Repos;
  gateway: NodeGateway;
  logger: Logger;
}

/**
 * Register checkpoints the rank-0 node announced in its metrics file (or, with a scan pattern,
 * found in the checkpoint directory), after confirming each exists on the node. Returns the new ones.
 * `announced`: the announcement lines a probe already read from that file (none read here then).
 */
export async function ingestCheckpoints(
  deps: CheckpointDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  attemptIndex: number,
  announced?: string[],
): Promise<CheckpointDoc[]> {
  const attempt = job.attempts[attemptIndex];
  const head = attempt?.nodes.find((n) => n.nodeRank === 0);
  const headSpec = head && cluster.nodes.find((n) => n.name === head.name);
  if (!attempt || !head || !headSpec) return [];
  const jobId = job._id.toString();
  const dir = checkpointDirFor(job, headSpec.workRoot);
  const policy = job.spec.checkpoints ?? {};

  let candidates = parseCheckpointAnnouncements(
    announced ??
      (
        await deps.gateway.command(
          cluster,
          head.name,
          announcementsCommand(`${attemptDir(headSpec.workRoot, jobId, attempt.id)}/metrics.jsonl`, 200),
        )
      ).split("\n"),
  );
  if (!candidates.length && policy.scanPattern) {
    const found = await deps.gateway.command(cluster, head.name, scanCheckpointsCommand(dir, policy.scanPattern));
    candidates = found
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const path = line.slice(line.indexOf("\t") + 1);
        const digits = path.slice(path.lastIndexOf("/") + 1).match(/\d+/g);
        return { path, step: digits ? Number(digits[digits.length - 1]) : 0, metrics: {} };
      });
  }
  const fresh = [];
  for (const c of candidates) {
    if (!isManagedCheckpointPath(c.path, dir)) {
      deps.logger.warn({ jobId, path: c.path, dir }, "ignoring a checkpoint outside the job's checkpoint directory");
      continue;
    }
    if (!(await deps.repos.checkpoints.isRegistered(job._id, c.path))) fresh.push(c);
  }
  if (!fresh.length) return [];
  const sizes = parseStatPaths(await deps.gateway.command(cluster, head.name, statPathsCommand(fresh.map((c) => c.path))));
  const added: CheckpointDoc[] = [];
  for (const c of fresh) {
    const size = sizes.get(c.path);
    if (size === undefined) continue; // announced but not (yet) on disk: not complete
    const doc = await deps.repos.checkpoints.registerComplete({
      jobId: job._id,
      team: job.team,
      attemptId: attempt.id,
      attemptNumber: attempt.number,
      step: c.step,
      node: head.name,
      path: c.path,
      uri: `node://${head.name}${c.path}`,
      size,
      metrics: c.metrics,
    });
    if (doc) added.push(doc);
  }
  if (added.length) deps.logger.info({ jobId, steps: added.map((c) => c.step) }, "checkpoints registered");
  return added;
}

/**
 * Retention: finish deletions left half-done, then delete what the policy no longer keeps.
 * Two-phase: mark deleting → remove from storage → remove the record; a crash between phases
 * leaves a `deleting` record that the next run completes, so nothing leaks or dangles.
 */
export async function collectCheckpoints(deps: CheckpointDeps, job: JobDoc, cluster: ClusterDoc): Promise<number> {
  for (const c of await deps.repos.checkpoints.listDeleting(job._id)) await deleteFromStorage(deps, job, cluster, c);
  const victims = checkpointsToDelete(await deps.repos.checkpoints.listComplete(job._id), job.spec.checkpoints ?? {});
  let deleted = 0;
  for (const c of victims) {
    if (!(await deps.repos.checkpoints.markDeleting(c._id))) continue;
    if (await deleteFromStorage(deps, job, cluster, c)) deleted++;
  }
  return deleted;
}

/** Phases 2 and 3 for one checkpoint marked deleting. False when its node could not be reached (retried later). */
export async function deleteFromStorage(
  deps: CheckpointDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  c: CheckpointDoc,
): Promise<boolean> {
  const node = cluster.nodes.find((n) => n.name === c.node);
  if (node && isManagedCheckpointPath(c.path, checkpointDirFor(job, node.workRoot))) {
    try {
      await deps.gateway.command(cluster, c.node, removePathCommand(c.path));
      await deleteStoredCopy(deps.repos, job, c);
    } catch (err) {
      deps.logger.warn(
        { jobId: job._id.toString(), checkpoint: c.path, err: (err as Error).message },
        "checkpoint delete failed; will retry",
      );
      return false;
    }
  }
  await deps.repos.checkpoints.remove(c._id);
  return true;
}
