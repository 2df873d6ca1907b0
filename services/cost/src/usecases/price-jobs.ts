import { COSTED_STATUSES, type CostSummary, forecastCost, type JobCost, roundUsd, TERMINAL_STATUSES } from "@trainyard/common";
import { PricingContext } from "@trainyard/core";
import { currentAttempt, type JobCostDoc, type JobDoc } from "@trainyard/db";
import type { CostDeps } from "../deps";
import { enforceBudgets, enforceJobLimit, type PricedJob } from "./enforce-budgets";

/**
 * Price one job from truth (Σ attempts Σ nodes GPUs × rate × running time, each moment at the price
 * then in force) and store it on the job, with its burn rate and a forecast at completion. Pricing
 * the same job twice at the same moment stores the same numbers: nothing is ever added up.
 */
export async function priceJob(deps: CostDeps, pricing: PricingContext, job: JobDoc, now: Date): Promise<PricedJob> {
  const summary: CostSummary = await pricing.price(job, now);
  const active = COSTED_STATUSES.includes(job.status);
  const burn = active ? await pricing.burn(job, now) : 0;
  const attempt = currentAttempt(job);
  const forecast = active
    ? forecastCost({
        usd: summary.usd,
        burnUsdPerHour: burn,
        progressRatio: job.progress?.ratio,
        progressAt: job.progress?.updatedAt,
        attemptStartedAt: attempt?.startedAt,
        now,
      })
    : undefined;
  const cost: JobCostDoc = {
    usd: roundUsd(summary.usd),
    gpuHours: summary.gpuHours,
    burnUsdPerHour: burn,
    ...(forecast ? { forecastUsd: roundUsd(forecast.forecastUsd), etaSeconds: Math.round(forecast.etaSeconds) } : {}),
    lines: summary.lines.map((l) => ({ ...l, usd: roundUsd(l.usd) })),
    final: TERMINAL_STATUSES.has(job.status),
    updatedAt: now,
  };
  await deps.repos.jobCosts.setCost(job._id, cost);
  return { job, cost };
}

/**
 * The scheduled sweep: price every job whose cost may still change, then evaluate every budget.
 * Safe on any number of replicas at once — prices are recomputed, never accumulated, and every
 * alert or stop decision is claimed by a unique insert.
 */
export async function runCostTick(deps: CostDeps, now = new Date()): Promise<{ priced: number }> {
  const pricing = await PricingContext.load(deps.repos);
  const jobs = await deps.repos.jobCosts.listToPrice();
  for (const job of jobs) {
    try {
      const priced = await priceJob(deps, pricing, job, now);
      await enforceJobLimit(deps, priced, now);
    } catch (err) {
      deps.logger.warn({ jobId: job._id.toString(), err: (err as Error).message }, "could not price job");
    }
  }
  await enforceBudgets(deps, pricing, now);
  return { priced: jobs.length };
}

/** A job started or ended: price it now (its final cost on `ended`) and check its team's budgets. */
export async function onJobEvent(deps: CostDeps, jobId: string, now = new Date()): Promise<JobCost | undefined> {
  const job = await deps.repos.jobs.byId(jobId);
  if (!job?.startedAt) return undefined;
  const pricing = await PricingContext.load(deps.repos);
  const priced = await priceJob(deps, pricing, job, now);
  await enforceJobLimit(deps, priced, now);
  await enforceBudgets(deps, pricing, now, { team: job.team });
  return { ...priced.cost, updatedAt: now.toISOString() };
}
