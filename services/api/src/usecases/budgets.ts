import { type BudgetView, badRequest, type budgetInputSchema, budgetPeriodAt, roundUsd, UserError } from "@trainyard/common";
import { PricingContext, scopeSpend } from "@trainyard/core";
import { type BudgetDoc, budgetView, type SpendScope } from "@trainyard/db";
import type { z } from "zod";

type BudgetInput = z.output<typeof budgetInputSchema>;

import type { ApiDeps } from "../context";

function scopeOf(b: BudgetDoc): SpendScope {
  if (b.scope.type === "project") return { team: b.team, project: b.scope.project! };
  if (b.scope.type === "job") return { team: b.team, jobId: b.scope.jobId! };
  return { team: b.team };
}

const money = (v: number) => `$${v.toFixed(v >= 100 ? 2 : 4)}`;

/** A budget with its spend in the current period, computed now from the jobs' attempts. */
async function withCurrent(deps: ApiDeps, pricing: PricingContext, b: BudgetDoc, now = new Date()): Promise<BudgetView> {
  const period = budgetPeriodAt(b.period, now);
  const { spendUsd } = await scopeSpend(deps.repos, pricing, scopeOf(b), period, now);
  const forecast = b.state?.period === period.key ? b.state.forecastUsd : undefined;
  return {
    ...budgetView(b),
    current: {
      period: period.key,
      spendUsd: roundUsd(spendUsd),
      usedRatio: spendUsd / b.limitUsd,
      ...(forecast !== undefined && forecast !== null ? { forecastUsd: Math.max(forecast, roundUsd(spendUsd)) } : {}),
      exhausted: spendUsd >= b.limitUsd,
    },
  };
}

async function parseBudget(deps: ApiDeps, team: string, spec: BudgetInput) {
  if (spec.scope.type === "job") {
    try {
      await deps.repos.jobs.getForTeam(team, spec.scope.jobId);
    } catch (err) {
      if (err instanceof UserError && err.status === 404) throw badRequest(`scope.jobId: job '${spec.scope.jobId}' not found`);
      throw err;
    }
  }
  return spec;
}

export async function createBudget(deps: ApiDeps, team: string, body: BudgetInput): Promise<BudgetView> {
  const doc = await deps.repos.budgets.create(team, await parseBudget(deps, team, body));
  deps.logger.info({ budgetId: doc._id.toString(), name: doc.name }, "budget created");
  return withCurrent(deps, await PricingContext.load(deps.repos), doc);
}

export async function listBudgets(deps: ApiDeps, team: string): Promise<BudgetView[]> {
  const pricing = await PricingContext.load(deps.repos);
  return Promise.all((await deps.repos.budgets.list(team)).map((b) => withCurrent(deps, pricing, b)));
}

export async function getBudget(deps: ApiDeps, team: string, id: string): Promise<BudgetView> {
  return withCurrent(deps, await PricingContext.load(deps.repos), await deps.repos.budgets.getForTeam(team, id));
}

/** Replace a budget's settings (its thresholds alert afresh under the new revision). */
export async function updateBudget(deps: ApiDeps, team: string, id: string, body: BudgetInput): Promise<BudgetView> {
  await deps.repos.budgets.getForTeam(team, id);
  const doc = await deps.repos.budgets.update(team, id, await parseBudget(deps, team, body));
  return withCurrent(deps, await PricingContext.load(deps.repos), doc);
}

export async function deleteBudget(deps: ApiDeps, team: string, id: string): Promise<void> {
  await deps.repos.budgets.delete(team, id);
}

/**
 * Refuse a new job whose team or project has an enabled `stop` budget that is exhausted in its
 * current period: 402 naming the budget, what was spent and how to get going again.
 */
export async function assertBudgetAllowsNewJob(deps: ApiDeps, team: string, project: string): Promise<void> {
  // Which budgets cover the scope is configuration (cached); what they have spent is read fresh.
  const covering = await deps.config.get(`budgets:${team}:${project}`, () => deps.repos.budgets.coveringNewJob(team, project));
  const budgets = covering.filter((b) => b.action === "stop");
  if (!budgets.length) return;
  const pricing = await PricingContext.load(deps.repos);
  const now = new Date();
  for (const b of budgets) {
    const period = budgetPeriodAt(b.period, now);
    const { spendUsd } = await scopeSpend(deps.repos, pricing, scopeOf(b), period, now);
    if (spendUsd >= b.limitUsd) {
      const scope = b.scope.type === "project" ? `project '${b.scope.project}'` : `team '${b.team}'`;
      throw new UserError(
        402,
        `budget '${b.name}' of ${scope} is exhausted: ${money(spendUsd)} of ${money(b.limitUsd)} spent ${
          period.key === "total" ? "in total" : `in ${period.key}`
        }; new jobs in this scope are refused until ${period.key === "total" ? "the limit is raised" : "the period ends or the limit is raised"}`,
        { budgetId: b._id.toString(), spendUsd: roundUsd(spendUsd), limitUsd: b.limitUsd, period: period.key },
      );
    }
  }
}
