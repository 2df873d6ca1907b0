import { COSTED_STATUSES, type JobCost } from "@trainyard/common";
import type { Types } from "mongoose";
import type { DocumentLocks } from "./locks";
import { oncePerDatabase } from "./migrations";
import type { JobCostDoc, JobDoc, Models } from "./models";

/** The job fields pricing and roll-ups read (never the inline files). */
const PRICING_FIELDS = {
  team: 1,
  name: 1,
  project: 1,
  framework: 1,
  clusterId: 1,
  clusterName: 1,
  status: 1,
  currentAttemptId: 1,
  attempts: 1,
  progress: 1,
  stopRequest: 1,
  cost: 1,
  startedAt: 1,
  endedAt: 1,
  createdAt: 1,
  updatedAt: 1,
  "spec.maxCostUsd": 1,
} as const;

export interface SpendScope {
  team: string;
  project?: string;
  jobId?: string;
}

/**
 * Cost data on job documents. The cost service is the only writer of `job.cost`; like every other
 * write to a job it runs under the job's document lock (FerretDB v1 updates are read-modify-write).
 */
export class JobCostRepo {
  constructor(
    private readonly m: Models,
    private readonly locks: DocumentLocks,
  ) {}

  /**
   * Store a job's cost unless a newer pricing is already stored (two replicas pricing the same job
   * with different clocks keep the later one). Returns whether it was written.
   */
  async setCost(id: Types.ObjectId | string, cost: JobCostDoc): Promise<boolean> {
    // Same key as JobRepo's lock: one writer per job document at a time.
    return this.locks.withLock(`job:${id.toString()}`, async () => {
      const cur = await this.m.Job.findById(id, { cost: 1 }).lean<Pick<JobDoc, "cost">>();
      if (!cur) return false;
      const prev = cur.cost?.updatedAt ? new Date(cur.cost.updatedAt).getTime() : -1;
      if (prev > new Date(cost.updatedAt).getTime()) return false;
      if (cur.cost?.final && !cost.final) return false;
      await this.m.Job.updateOne({ _id: id }, cost.final ? { $set: { cost }, $unset: { costPending: 1 } } : { $set: { cost } });
      return true;
    });
  }

  /**
   * Jobs whose cost may still change: started and not yet priced to the end (`costPending`, set
   * when a job starts and removed with its final cost). One equality, so FerretDB v1 reads only
   * those jobs, not every job ever stored (the `$exists`/`$or` this replaced decoded all of them
   * every tick: ~3 s of FerretDB CPU a minute at 10,000 jobs).
   */
  async listToPrice(limit = 5000): Promise<JobDoc[]> {
    return this.m.Job.find({ costPending: true }, PRICING_FIELDS).limit(limit).lean<JobDoc[]>();
  }

  /**
   * Jobs started before `costPending` existed and not priced to the end get it, once per database
   * (recorded in `migrations`): one pass over every job (FerretDB v1 decodes them all to match
   * `$exists`).
   */
  async markUnpricedJobs(): Promise<number> {
    return oncePerDatabase(this.m.Job.db, "job-cost-pending", async () => {
      const res = await this.m.Job.updateMany(
        { startedAt: { $exists: true }, "cost.final": { $ne: true }, costPending: { $exists: false } },
        { $set: { costPending: true } },
        { timestamps: false },
      );
      return res.modifiedCount;
    });
  }

  /** Started jobs of a scope that may have run at or after `from` (all of them without `from`). */
  async listInScope(scope: SpendScope, from?: Date, limit = 20_000): Promise<JobDoc[]> {
    const filter: Record<string, unknown> = { team: scope.team, startedAt: { $exists: true } };
    if (scope.project) filter.project = scope.project;
    if (scope.jobId) filter._id = scope.jobId;
    if (from) filter.$or = [{ endedAt: { $exists: false } }, { endedAt: null }, { endedAt: { $gte: from } }];
    return this.m.Job.find(filter, PRICING_FIELDS).limit(limit).lean<JobDoc[]>();
  }

  /** Every team's started jobs that may have run at or after `from` (roll-ups and metrics). */
  async listRunSince(from: Date, to?: Date, limit = 50_000): Promise<JobDoc[]> {
    const filter: Record<string, unknown> = {
      startedAt: { $exists: true, ...(to ? { $lt: to } : {}) },
      $or: [{ endedAt: { $exists: false } }, { endedAt: null }, { endedAt: { $gte: from } }],
    };
    return this.m.Job.find(filter, PRICING_FIELDS).limit(limit).lean<JobDoc[]>();
  }

  async listActive(limit = 5000): Promise<JobDoc[]> {
    // One equality per status (see JobRepo.findInStatuses: FerretDB v1 does not push `$in` down).
    const parts = await Promise.all(
      COSTED_STATUSES.map((status) => this.m.Job.find({ status }, PRICING_FIELDS).limit(limit).lean<JobDoc[]>()),
    );
    return parts.flat().slice(0, limit);
  }

  /** Jobs of a scope that have not started yet but would run (QUEUED): a stop budget ends them too. */
  async listWaitingInScope(scope: SpendScope): Promise<JobDoc[]> {
    const filter: Record<string, unknown> = { team: scope.team, status: "QUEUED" };
    if (scope.project) filter.project = scope.project;
    if (scope.jobId) filter._id = scope.jobId;
    return this.m.Job.find(filter, PRICING_FIELDS).lean<JobDoc[]>();
  }

  /** Number of jobs by status, framework, team and project. */
  async countByLabels(): Promise<Array<{ status: string; framework: string; team: string; project: string; count: number }>> {
    const rows = await this.m.Job.aggregate<{
      _id: { status: string; framework: string; team: string; project: string };
      count: number;
    }>([
      {
        $group: {
          _id: { status: "$status", framework: "$framework", team: "$team", project: "$project" },
          count: { $sum: 1 },
        },
      },
    ]);
    return rows.map((r) => ({ ...r._id, count: r.count }));
  }
}

const iso = (d: Date | string) => new Date(d).toISOString();

export function jobCostView(c: JobCostDoc): JobCost {
  return {
    usd: c.usd,
    gpuHours: c.gpuHours,
    burnUsdPerHour: c.burnUsdPerHour ?? 0,
    ...(c.forecastUsd !== undefined && c.forecastUsd !== null ? { forecastUsd: c.forecastUsd } : {}),
    ...(c.etaSeconds !== undefined && c.etaSeconds !== null ? { etaSeconds: c.etaSeconds } : {}),
    lines: (c.lines ?? []).map((l) => ({ gpuType: l.gpuType, month: l.month, usd: l.usd, gpuHours: l.gpuHours })),
    final: Boolean(c.final),
    updatedAt: iso(c.updatedAt),
  };
}
