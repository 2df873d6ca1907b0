import { badRequest, type CostGroup, type CostLine, type CostReport, monthStart, roundUsd } from "@trainyard/common";
import { PricingContext } from "@trainyard/core";
import type { JobDoc } from "@trainyard/db";
import { z } from "zod";
import type { ApiDeps } from "../context";

const isoDate = z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" });

export const costsQuerySchema = z
  .object({
    groupBy: z.enum(["team", "project", "job"], { error: "must be one of team, project, job" }).default("project"),
    from: isoDate.optional(),
    to: isoDate.optional(),
    project: z.string().max(63).optional(),
  })
  .strict();

/**
 * Spend in [from, to) grouped by team, project or job, answered from stored data: the jobs'
 * recorded attempts priced with the stored rate card versions. An attempt that is still running
 * counts up to the job's last pricing by the cost service (`cost.updatedAt`).
 */
export async function costReport(deps: ApiDeps, team: string, q: z.output<typeof costsQuerySchema>): Promise<CostReport> {
  const now = new Date();
  const to = q.to ? new Date(q.to) : now;
  const from = q.from ? new Date(q.from) : monthStart(now);
  if (from.getTime() >= to.getTime()) throw badRequest("from must be before to");
  const pricing = await PricingContext.load(deps.repos);
  const jobs = (await deps.repos.jobCosts.listRunSince(from, to)).filter(
    (j) => j.team === team && (!q.project || j.project === q.project),
  );
  const groups = new Map<string, CostGroup & { lines: Map<string, { usd: number; gpuHours: number }> }>();
  for (const job of jobs) {
    const openEnd = lastPriced(job);
    const s = await pricing.price(job, openEnd, { from, to });
    if (s.gpuHours === 0 && s.usd === 0) continue;
    const key = q.groupBy === "team" ? job.team : q.groupBy === "project" ? `${job.team}/${job.project}` : job._id.toString();
    const g = groups.get(key) ?? {
      key,
      team: job.team,
      ...(q.groupBy !== "team" ? { project: job.project } : {}),
      ...(q.groupBy === "job"
        ? {
            job: {
              id: job._id.toString(),
              name: job.name,
              status: job.status,
              ...(job.cost?.updatedAt ? { costUpdatedAt: new Date(job.cost.updatedAt).toISOString() } : {}),
            },
          }
        : {}),
      usd: 0,
      gpuHours: 0,
      jobs: 0,
      byGpuType: [],
      lines: new Map(),
    };
    g.usd += s.usd;
    g.gpuHours += s.gpuHours;
    g.jobs += 1;
    addLines(g.lines, s.lines);
    groups.set(key, g);
  }
  const items = [...groups.values()]
    .map(({ lines, ...g }) => ({
      ...g,
      usd: roundUsd(g.usd),
      byGpuType: [...lines.entries()].map(([gpuType, v]) => ({ gpuType, usd: roundUsd(v.usd), gpuHours: v.gpuHours })),
    }))
    .sort((a, b) => b.usd - a.usd || a.key.localeCompare(b.key));
  return {
    groupBy: q.groupBy,
    from: from.toISOString(),
    to: to.toISOString(),
    currency: "USD",
    totalUsd: roundUsd(items.reduce((a, g) => a + g.usd, 0)),
    totalGpuHours: items.reduce((a, g) => a + g.gpuHours, 0),
    items,
  };
}

/** Where a job's running attempt stops counting in a report: its last pricing (or its start). */
function lastPriced(job: JobDoc): Date {
  if (job.cost?.updatedAt) return new Date(job.cost.updatedAt);
  return new Date(job.startedAt ?? job.createdAt);
}

function addLines(into: Map<string, { usd: number; gpuHours: number }>, lines: CostLine[]): void {
  for (const l of lines) {
    const cur = into.get(l.gpuType) ?? { usd: 0, gpuHours: 0 };
    cur.usd += l.usd;
    cur.gpuHours += l.gpuHours;
    into.set(l.gpuType, cur);
  }
}
