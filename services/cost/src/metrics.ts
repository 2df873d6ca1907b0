import { budgetPeriodAt, monthKey } from "@trainyard/common";
import type { BudgetDoc, JobDoc } from "@trainyard/db";
import { Counter, Gauge, type Registry } from "prom-client";
import { LatestSnapshot } from "./latest-snapshot";

/** What the gauges show, read from stored data (so every replica shows the same). */
export interface CostSnapshot {
  jobCounts: Array<{ status: string; framework: string; team: string; project: string; count: number }>;
  /** Jobs in LAUNCHING, RUNNING or RETRYING: the only ones with per-job series. */
  activeJobs: JobDoc[];
  /** Jobs that ran this month (their stored cost lines carry the month). */
  monthJobs: JobDoc[];
  budgets: BudgetDoc[];
  now: Date;
}

export interface CostMetrics {
  ticks: Counter<"outcome">;
}

export interface CostMetricsOptions {
  /** How old the snapshot a scrape serves may be before the scrape asks for a new one. */
  maxAgeMs?: number;
  /** How long a scrape waits for that new snapshot before serving the previous one. */
  waitMs?: number;
}

/**
 * The cost service's series. Labels stay bounded: per-job series exist only for active jobs; the
 * rest is by team, project, GPU type, status and framework. The values come from one snapshot of
 * stored data, read at most once per `maxAgeMs` whatever the number of scrapers: on FerretDB v1 a
 * snapshot decodes every stored job (seconds at 10,000), so a scrape serves the last snapshot
 * rather than waiting for a new one past `waitMs` (trainyard_cost_metrics_age_seconds says how old).
 */
export function registerCostMetrics(
  registry: Registry,
  snapshot: () => Promise<CostSnapshot>,
  opts: CostMetricsOptions = {},
): CostMetrics {
  const latest = new LatestSnapshot(snapshot, opts.maxAgeMs ?? 15_000, opts.waitMs ?? 1_000);
  const get = () => latest.get();
  // Read the first snapshot now, so the first scrape does not wait for it.
  void get().catch(() => undefined);
  const registers = [registry];

  new Gauge({
    name: "trainyard_jobs",
    help: "Jobs by status, framework, team and project",
    labelNames: ["status", "framework", "team", "project"] as const,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const r of s.jobCounts)
        this.set({ status: r.status, framework: r.framework, team: r.team, project: r.project }, r.count);
    },
  });
  const jobLabels = ["job_id", "job_name", "team", "project"] as const;
  const labelsOf = (j: JobDoc) => ({ job_id: j._id.toString(), job_name: j.name, team: j.team, project: j.project });
  new Gauge({
    name: "trainyard_job_cost_usd",
    help: "Cost so far of each active job (USD), as last priced",
    labelNames: jobLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const j of s.activeJobs) this.set(labelsOf(j), j.cost?.usd ?? 0);
    },
  });
  new Gauge({
    name: "trainyard_job_forecast_cost_usd",
    help: "Forecast cost at completion of each active job with known progress (USD)",
    labelNames: jobLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const j of s.activeJobs) if (typeof j.cost?.forecastUsd === "number") this.set(labelsOf(j), j.cost.forecastUsd);
    },
  });
  new Gauge({
    name: "trainyard_job_burn_rate_usd_per_hour",
    help: "What each active job costs per hour right now (USD/h)",
    labelNames: jobLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const j of s.activeJobs) this.set(labelsOf(j), j.cost?.burnUsdPerHour ?? 0);
    },
  });
  new Gauge({
    name: "trainyard_job_progress_ratio",
    help: "Progress of each active job reporting total_steps (0..1)",
    labelNames: jobLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const j of s.activeJobs) if (typeof j.progress?.ratio === "number") this.set(labelsOf(j), j.progress.ratio);
    },
  });

  const monthTotals = async () => {
    const s = await get();
    const month = monthKey(s.now);
    const out = new Map<string, { team: string; project: string; gpu_type: string; usd: number; gpuHours: number }>();
    for (const j of s.monthJobs) {
      for (const l of j.cost?.lines ?? []) {
        if (l.month !== month) continue;
        const k = `${j.team}\u0000${j.project}\u0000${l.gpuType}`;
        const row = out.get(k) ?? { team: j.team, project: j.project, gpu_type: l.gpuType, usd: 0, gpuHours: 0 };
        row.usd += l.usd;
        row.gpuHours += l.gpuHours;
        out.set(k, row);
      }
    }
    return [...out.values()];
  };
  new Gauge({
    name: "trainyard_month_to_date_spend_usd",
    help: "Spend in the current calendar month (UTC) by team, project and GPU type (USD)",
    labelNames: ["team", "project", "gpu_type"] as const,
    registers,
    async collect() {
      const rows = await monthTotals();
      this.reset();
      for (const r of rows) this.set({ team: r.team, project: r.project, gpu_type: r.gpu_type }, r.usd);
    },
  });
  new Gauge({
    name: "trainyard_month_to_date_gpu_hours",
    help: "GPU-hours used in the current calendar month (UTC) by team, project and GPU type",
    labelNames: ["team", "project", "gpu_type"] as const,
    registers,
    async collect() {
      const rows = await monthTotals();
      this.reset();
      for (const r of rows) this.set({ team: r.team, project: r.project, gpu_type: r.gpu_type }, r.gpuHours);
    },
  });

  const budgetLabels = ["budget_id", "budget", "team", "scope", "action"] as const;
  const budgetSeries = (b: BudgetDoc) => ({
    budget_id: b._id.toString(),
    budget: b.name,
    team: b.team,
    scope: b.scope.type === "project" ? `project:${b.scope.project}` : b.scope.type === "job" ? `job:${b.scope.jobId}` : "team",
    action: b.action,
  });
  /** A budget's stored state, if it belongs to the current period. */
  const current = (b: BudgetDoc, now: Date) =>
    b.state && b.state.period === budgetPeriodAt(b.period, now).key ? b.state : undefined;
  new Gauge({
    name: "trainyard_budget_used_ratio",
    help: "Spend of each enabled budget in its current period divided by its limit",
    labelNames: budgetLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const b of s.budgets) this.set(budgetSeries(b), (current(b, s.now)?.spendUsd ?? 0) / b.limitUsd);
    },
  });
  new Gauge({
    name: "trainyard_budget_forecast_ratio",
    help: "Forecast spend of each enabled budget in its current period divided by its limit",
    labelNames: budgetLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const b of s.budgets) {
        const st = current(b, s.now);
        this.set(budgetSeries(b), (st?.forecastUsd ?? st?.spendUsd ?? 0) / b.limitUsd);
      }
    },
  });
  new Gauge({
    name: "trainyard_budget_limit_usd",
    help: "Limit of each enabled budget (USD per period)",
    labelNames: budgetLabels,
    registers,
    async collect() {
      const s = await get();
      this.reset();
      for (const b of s.budgets) this.set(budgetSeries(b), b.limitUsd);
    },
  });

  new Gauge({
    name: "trainyard_cost_metrics_age_seconds",
    help: "Age of the stored-data snapshot the money, job and budget series of this scrape come from",
    registers,
    async collect() {
      await get();
      const age = latest.ageSeconds();
      if (age !== undefined) this.set(age);
    },
  });

  const ticks = new Counter({
    name: "trainyard_cost_ticks_total",
    help: "Scheduled pricing sweeps run by this replica, by outcome",
    labelNames: ["outcome"] as const,
    registers,
  });
  return { ticks };
}
