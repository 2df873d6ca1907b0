import {
  type BudgetPeriodWindow,
  burnRate,
  type CostSummary,
  jobUsage,
  priceUsage,
  type RateCard,
  sortRateCards,
  type UsageInterval,
} from "@trainyard/common";
import type { ClusterDoc, JobDoc, Repos, SpendScope } from "@trainyard/db";

/**
 * Pricing what is stored: the rate card versions and the clusters' GPU types, loaded once per
 * pricing pass. Shared by the cost service (ticks, budgets) and the API (cost reports, the budget
 * check on submit), so both compute money the same way.
 */
export class PricingContext {
  private readonly clusters = new Map<string, Promise<ClusterDoc | null>>();

  private constructor(
    private readonly repos: Repos,
    readonly cards: RateCard[],
  ) {}

  static async load(repos: Repos): Promise<PricingContext> {
    return new PricingContext(repos, sortRateCards(await repos.rateCards.all()));
  }

  private cluster(id: string): Promise<ClusterDoc | null> {
    let c = this.clusters.get(id);
    if (!c) {
      c = this.repos.clusters.byId(id);
      this.clusters.set(id, c);
    }
    return c;
  }

  /** A job's usage intervals; open ones end at `openEnd`. */
  async usage(job: JobDoc, openEnd: Date): Promise<UsageInterval[]> {
    const clusterId = job.clusterId.toString();
    const cluster = await this.cluster(clusterId);
    const gpuTypeOf = (node: string) => cluster?.nodes.find((n) => n.name === node)?.gpuType ?? "unknown";
    return jobUsage({ clusterId, endedAt: job.endedAt, attempts: job.attempts }, gpuTypeOf, openEnd);
  }

  /** Cost of a job (within a window), open intervals up to `openEnd`. */
  async price(job: JobDoc, openEnd: Date, window: { from?: Date; to?: Date } = {}): Promise<CostSummary> {
    return priceUsage(await this.usage(job, openEnd), this.cards, window);
  }

  /** USD per hour the job burns at `now` (0 when nothing of it runs). */
  async burn(job: JobDoc, now: Date): Promise<number> {
    return burnRate(await this.usage(job, now), this.cards, now, now);
  }
}

export interface ScopeSpend {
  spendUsd: number;
  jobs: Array<{ job: JobDoc; usd: number }>;
}

/** What a budget scope spent in a period, recomputed from the jobs' attempts up to `now`. */
export async function scopeSpend(
  repos: Repos,
  pricing: PricingContext,
  scope: SpendScope,
  period: BudgetPeriodWindow,
  now: Date,
): Promise<ScopeSpend> {
  const jobs = await repos.jobCosts.listInScope(scope, period.start);
  const window = { ...(period.start ? { from: period.start } : {}), ...(period.end ? { to: period.end } : {}) };
  const priced = await Promise.all(jobs.map(async (job) => ({ job, usd: (await pricing.price(job, now, window)).usd })));
  return { spendUsd: priced.reduce((a, p) => a + p.usd, 0), jobs: priced };
}
