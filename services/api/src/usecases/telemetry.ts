import { nameSchema, type ProgressSampleView, type TelemetrySampleView } from "@trainyard/common";
import { progressSampleView, telemetryView } from "@trainyard/db";
import { z } from "zod";
import type { ApiDeps } from "../context";

export const metricsQuerySchema = z
  .object({
    node: nameSchema.optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(5000).default(500),
  })
  .strict();

/**
 * A job's GPU and process samples in time order (the newest `limit`), kept after it ends; `latest`
 * is each node's most recent one, for a dashboard's "now".
 */
export async function jobMetrics(
  deps: ApiDeps,
  team: string,
  jobId: string,
  q: z.output<typeof metricsQuerySchema>,
): Promise<{ items: TelemetrySampleView[]; latest: Record<string, TelemetrySampleView> }> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  const docs = await deps.repos.telemetry.forJob(job._id, {
    limit: q.limit,
    ...(q.node ? { node: q.node } : {}),
    ...(q.since ? { since: new Date(q.since) } : {}),
  });
  const items = docs.map(telemetryView);
  const latest: Record<string, TelemetrySampleView> = {};
  for (const s of items) latest[s.node] = s;
  return { items, latest };
}

export const progressQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(20_000).default(2000) }).strict();

/**
 * A job's progress history (step, loss, total steps per attempt), the newest `limit` oldest first:
 * what its loss/step chart draws, kept after the job ends.
 */
export async function jobProgress(
  deps: ApiDeps,
  team: string,
  jobId: string,
  q: z.output<typeof progressQuerySchema>,
): Promise<{ items: ProgressSampleView[] }> {
  const job = await deps.repos.jobs.getForTeam(team, jobId);
  const docs = await deps.repos.progress.forJob(job._id, q.limit);
  return { items: docs.map(progressSampleView) };
}
