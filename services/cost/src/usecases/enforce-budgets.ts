import {
  ACTIVE_STATUSES,
  type AlertType,
  type BudgetPeriodWindow,
  budgetPeriodAt,
  COSTED_STATUSES,
  forecastCost,
  reachedThresholds,
  roundUsd,
  type Severity,
} from "@trainyard/common";
import { finishAttempt, type PricingContext, scopeSpend } from "@trainyard/core";
import { type BudgetDoc, currentAttempt, type JobCostDoc, type JobDoc, type SpendScope } from "@trainyard/db";
import type { CostDeps } from "../deps";

const usd = (v: number) => `$${v.toFixed(v >= 100 ? 2 : 4)}`;

export function scopeOf(b: BudgetDoc): SpendScope {
  if (b.scope.type === "project") return { team: b.team, project: b.scope.project! };
  if (b.scope.type === "job") return { team: b.team, jobId: b.scope.jobId! };
  return { team: b.team };
}

export function describeScope(b: BudgetDoc): string {
  if (b.scope.type === "project") return `project ${b.scope.project} of team ${b.team}`;
  if (b.scope.type === "job") return `job ${b.scope.jobId}`;
  return `team ${b.team}`;
}

const periodText = (p: BudgetPeriodWindow) => (p.key === "total" ? "in total" : `in ${p.key}`);

async function alert(
  deps: CostDeps,
  a: {
    type: AlertType;
    severity: Severity;
    message: string;
    team: string;
    dedupKey: string;
    budgetId?: string;
    jobId?: string;
    facts: Record<string, number | string>;
  },
): Promise<void> {
  await deps.bus.send("alerts", { ...a, at: new Date().toISOString() });
}

/**
 * Evaluate every enabled budget (of one team, when given): alert each threshold reached — once per
 * budget revision and period, however many replicas evaluate it — alert a forecast over the limit
 * before it is reached, and with action `stop` stop the scope's jobs once the limit is reached.
 */
export async function enforceBudgets(deps: CostDeps, pricing: PricingContext, now: Date, only?: { team: string }): Promise<void> {
  const budgets = (await deps.repos.budgets.listEnabled()).filter((b) => !only || b.team === only.team);
  for (const b of budgets) {
    try {
      await enforceBudget(deps, pricing, b, now);
    } catch (err) {
      deps.logger.warn({ budgetId: b._id.toString(), err: (err as Error).message }, "could not evaluate budget");
    }
  }
}

export async function enforceBudget(deps: CostDeps, pricing: PricingContext, b: BudgetDoc, now: Date): Promise<void> {
  const { repos } = deps;
  const id = b._id.toString();
  const period = budgetPeriodAt(b.period, now);
  const spend = await scopeSpend(repos, pricing, scopeOf(b), period, now);
  const claimBase = `budget:${id}:r${b.revision ?? 1}:${period.key}`;

  // Forecast: spend so far + what the scope's running jobs will still burn before they finish (or the period ends).
  let remaining = 0;
  for (const { job } of spend.jobs) {
    if (!COSTED_STATUSES.includes(job.status)) continue;
    const burn = await pricing.burn(job, now);
    const f = forecastCost({
      usd: 0,
      burnUsdPerHour: burn,
      progressRatio: job.progress?.ratio,
      progressAt: job.progress?.updatedAt,
      attemptStartedAt: currentAttempt(job)?.startedAt,
      now,
    });
    if (!f) continue;
    const untilEnd = period.end ? Math.max(0, period.end.getTime() - now.getTime()) / 1000 : Number.POSITIVE_INFINITY;
    remaining += (burn * Math.min(f.etaSeconds, untilEnd)) / 3600;
  }
  const forecastUsd = spend.spendUsd + remaining;
  await repos.budgets.recordState(b._id, {
    period: period.key,
    spendUsd: roundUsd(spend.spendUsd),
    forecastUsd: roundUsd(forecastUsd),
    evaluatedAt: now,
  });

  const facts = { spendUsd: roundUsd(spend.spendUsd), limitUsd: b.limitUsd, period: period.key, budget: b.name };
  for (const t of reachedThresholds(b.thresholds, spend.spendUsd, b.limitUsd)) {
    const key = `${claimBase}:t${t}`;
    if (
      !(await repos.budgets.claim({
        key,
        budgetId: id,
        kind: "threshold",
        period: period.key,
        threshold: t,
        spendUsd: spend.spendUsd,
      }))
    )
      continue;
    deps.logger.info({ budgetId: id, threshold: t, spendUsd: spend.spendUsd }, "budget threshold reached");
    await alert(deps, {
      type: "budget.threshold",
      severity: t >= 100 ? "critical" : "warning",
      message: `Budget '${b.name}' (${describeScope(b)}) reached ${t}%: ${usd(spend.spendUsd)} of ${usd(b.limitUsd)} ${periodText(period)}${
        t >= 100 && b.action === "stop" ? "; stopping its jobs" : ""
      }`,
      team: b.team,
      budgetId: id,
      ...(b.scope.type === "job" ? { jobId: b.scope.jobId! } : {}),
      dedupKey: key,
      facts: { ...facts, threshold: t },
    });
  }

  if (spend.spendUsd < b.limitUsd && forecastUsd >= b.limitUsd) {
    const key = `${claimBase}:forecast`;
    if (await repos.budgets.claim({ key, budgetId: id, kind: "forecast", period: period.key, spendUsd: spend.spendUsd })) {
      await alert(deps, {
        type: "budget.forecast",
        severity: "warning",
        message: `Budget '${b.name}' (${describeScope(b)}) is forecast to reach ${usd(forecastUsd)} of ${usd(b.limitUsd)} ${periodText(
          period,
        )} at the running jobs' current pace (${usd(spend.spendUsd)} spent so far)`,
        team: b.team,
        budgetId: id,
        dedupKey: key,
        facts: { ...facts, forecastUsd: roundUsd(forecastUsd) },
      });
    }
  }

  if (b.action === "stop" && spend.spendUsd >= b.limitUsd) {
    const reason = `budget '${b.name}' exhausted: ${usd(spend.spendUsd)} of ${usd(b.limitUsd)} ${periodText(period)}`;
    for (const { job } of spend.jobs) await stopForBudget(deps, job, reason, now);
    for (const job of await repos.jobCosts.listWaitingInScope(scopeOf(b))) await endWaitingForBudget(deps, job, reason, now, id);
  }
}

/** A job with the cost it was just priced at (what each enforcement pass reads). */
export interface PricedJob {
  job: JobDoc;
  cost: JobCostDoc;
}

/** A job's own limit (spec.maxCostUsd): stop it once its cost reaches it, warn once when forecast to. */
export async function enforceJobLimit(deps: CostDeps, { job, cost }: PricedJob, now: Date): Promise<void> {
  const max = job.spec?.maxCostUsd;
  if (!max || !COSTED_STATUSES.includes(job.status)) return;
  const jobId = job._id.toString();
  if (cost.usd >= max) {
    await stopForBudget(deps, job, `cost ${usd(cost.usd)} reached the job's maxCostUsd ${usd(max)}`, now);
    return;
  }
  if (cost.forecastUsd !== undefined && cost.forecastUsd >= max) {
    const key = `job:${jobId}:maxcost:forecast`;
    if (await deps.repos.budgets.claim({ key, jobId, kind: "forecast", period: "total", spendUsd: cost.usd })) {
      await alert(deps, {
        type: "budget.forecast",
        severity: "warning",
        message: `Job ${job.name} is forecast to cost ${usd(cost.forecastUsd)}, over its maxCostUsd ${usd(max)} (${usd(cost.usd)} so far)`,
        team: job.team,
        jobId,
        dedupKey: key,
        facts: { spendUsd: cost.usd, limitUsd: max, forecastUsd: cost.forecastUsd },
      });
    }
  }
}

/**
 * Ask the launcher to stop a running job for its budget (it ends STOPPED_BUDGET once nothing of the
 * attempt is left). The first stop request of a job wins, so racing replicas ask only once.
 */
async function stopForBudget(deps: CostDeps, job: JobDoc, reason: string, now: Date): Promise<void> {
  if (!ACTIVE_STATUSES.includes(job.status) || !job.currentAttemptId || job.stopRequest?.kind) return;
  const jobId = job._id.toString();
  const requested = await deps.repos.jobs.requestStop(job._id, job.currentAttemptId, {
    kind: "budget",
    reason,
    requestedAt: now,
  });
  if (!requested) return;
  deps.logger.warn({ jobId, attemptId: job.currentAttemptId, reason }, "stopping job for its budget");
  await deps.bus.send("control", { jobId, attemptId: job.currentAttemptId });
}

/** A job of an exhausted scope that waits to (re)start is ended before it spends anything. */
async function endWaitingForBudget(deps: CostDeps, job: JobDoc, reason: string, now: Date, budgetId: string): Promise<void> {
  await finishAttempt(deps, job, {
    status: "STOPPED_BUDGET",
    from: [job.status],
    at: now,
    failure: { reason },
    alert: {
      type: "budget.stop",
      severity: "critical",
      message: `${job.name}: ${reason} (it had not started)`,
      team: job.team,
      budgetId,
      dedupKey: `budget.stop:${job._id.toString()}`,
      facts: {},
    },
  });
}
