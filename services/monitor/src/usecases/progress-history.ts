import type { JobDoc } from "@trainyard/db";
import type { MonitorDeps } from "../deps";
import { stepLines } from "../progress";

/**
 * Keep the steps a check saw that are newer than the attempt's last recorded one, so the job's
 * loss/step chart outlives the job (the job document holds only the latest progress). A probe reads
 * the tail of the metrics file, so steps written between two checks are kept too. Bounded per job;
 * a failure here never fails the check.
 */
export async function recordProgressHistory(
  deps: MonitorDeps,
  job: JobDoc,
  attemptId: string,
  metrics: Array<Record<string, unknown>>,
  now: Date,
): Promise<void> {
  try {
    const after = await deps.repos.progress.lastStep(job._id, attemptId);
    const fresh = stepLines(metrics).filter((l) => l.step > after);
    if (!fresh.length) return;
    await deps.repos.progress.add(fresh.map((l) => ({ jobId: job._id, attemptId, at: now, ...l })));
    // The first check of each minute trims the job to its newest samples.
    if (Math.floor(now.getTime() / 60_000) !== Math.floor((now.getTime() - deps.intervalMs) / 60_000)) {
      await deps.repos.progress.prune(job._id, deps.telemetry.maxSamplesPerJob);
    }
  } catch (err) {
    deps.logger.warn(
      { jobId: job._id.toString(), err: (err as Error).message },
      "progress history not stored; the next check tries again",
    );
  }
}
