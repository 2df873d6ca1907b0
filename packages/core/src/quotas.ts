import { ACTIVE_STATUSES, type Quota } from "@trainyard/common";
import type { JobDoc, Repos } from "@trainyard/db";

/** What a team's launching and running jobs hold right now. */
export interface TeamUsage {
  jobs: number;
  gpus: number;
}

/** GPUs a job holds (its current attempt's reservation) or will ask for (its spec). */
export function gpusOf(job: Pick<JobDoc, "spec" | "attempts" | "currentAttemptId">): number {
  const attempt = job.attempts.find((a) => a.id === job.currentAttemptId);
  if (attempt?.nodes.length) return attempt.nodes.reduce((sum, n) => sum + n.gpuIndices.length, 0);
  return job.spec.resources.nodes * job.spec.resources.gpusPerNode;
}

/**
 * Why a job needing `needGpus` may not start under the team's quota, or undefined when it may.
 * The job then waits in QUEUED with this reason; it never fails for a quota.
 */
export function quotaBlock(quota: Quota, usage: TeamUsage, needGpus: number): string | undefined {
  if (quota.maxJobs !== undefined && usage.jobs + 1 > quota.maxJobs) {
    return `waiting for team quota: ${usage.jobs} of ${quota.maxJobs} concurrent jobs running`;
  }
  if (quota.maxGpus !== undefined) {
    if (needGpus > quota.maxGpus) {
      return `waiting for team quota: the job needs ${needGpus} GPUs but the team may hold at most ${quota.maxGpus}; it starts only if the quota is raised`;
    }
    if (usage.gpus + needGpus > quota.maxGpus) {
      return `waiting for team quota: ${usage.gpus} of ${quota.maxGpus} GPUs in use, the job needs ${needGpus}`;
    }
  }
  return undefined;
}

export const hasQuota = (q: Quota) => q.maxGpus !== undefined || q.maxJobs !== undefined;

/** The team's current usage, read from its launching and running jobs. */
export async function teamUsage(repos: Repos, team: string, exceptJobId?: string): Promise<TeamUsage> {
  const active = (await repos.jobs.listByTeam(team, ACTIVE_STATUSES)).filter((j) => j._id.toString() !== exceptJobId);
  return { jobs: active.length, gpus: active.reduce((sum, j) => sum + gpusOf(j), 0) };
}
