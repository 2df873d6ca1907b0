import { z } from "zod";
import { nameSchema } from "./names";

/**
 * Money: the rate card, the pure cost function, budgets and forecasts.
 *
 * A job's cost is always recomputed from truth — Σ attempts Σ nodes GPUs × rate × running time —
 * never accumulated from increments, so a repeated or late tick cannot double-charge. The rate card
 * is effective-dated: usage is charged at the price in force at the moment it happened.
 * Calendar months are UTC.
 */

const MS_PER_HOUR = 3_600_000;

export const usdPerHourSchema = z.number().finite().min(0, "must be >= 0").max(1_000_000, "must be <= 1000000");
export const usdAmountSchema = z.number().finite().positive("must be > 0").max(1_000_000_000, "must be <= 1e9");

/** Body of PUT /v1/pricing: a complete rate card, in force from `effectiveFrom` (default: now). */
export const rateCardInputSchema = z
  .object({
    /** ISO 8601; usage before it keeps the previous card's prices. */
    effectiveFrom: z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" }).optional(),
    /** USD per GPU-hour by GPU type (the cluster node's `gpuType`). */
    gpuTypes: z.record(nameSchema, usdPerHourSchema).default({}),
    /** Per-node overrides (USD per GPU-hour); `cluster` is a cluster name or id. */
    nodes: z
      .array(z.object({ cluster: z.string().min(1).max(64), node: nameSchema, usdPerGpuHour: usdPerHourSchema }).strict())
      .max(10_000)
      .default([]),
    /** Price of GPU types the card does not list. */
    defaultUsdPerGpuHour: usdPerHourSchema.default(0),
    note: z.string().max(500).optional(),
  })
  .strict()
  .superRefine((card, ctx) => {
    const seen = new Set<string>();
    card.nodes.forEach((n, i) => {
      const key = `${n.cluster}/${n.node}`;
      if (seen.has(key)) ctx.addIssue({ code: "custom", path: ["nodes", i], message: `duplicate override for ${key}` });
      seen.add(key);
    });
  });
export type RateCardInput = z.input<typeof rateCardInputSchema>;

/** A stored version of the rate card (overrides resolved to cluster ids). */
export interface RateCard {
  id: string;
  effectiveFrom: Date;
  gpuTypes: Record<string, number>;
  nodes: Array<{ clusterId: string; clusterName: string; node: string; usdPerGpuHour: number }>;
  defaultUsdPerGpuHour: number;
  note?: string;
  createdAt: Date;
}

/** Price of one GPU-hour on a node under a card. */
export function rateOf(card: RateCard | undefined, clusterId: string, node: string, gpuType: string): number {
  if (!card) return 0;
  const override = card.nodes.find((n) => n.clusterId === clusterId && n.node === node);
  if (override) return override.usdPerGpuHour;
  return card.gpuTypes[gpuType] ?? card.defaultUsdPerGpuHour;
}

/** Cards ordered by effectiveFrom (ties: the later created wins, so it sorts last). */
export function sortRateCards(cards: readonly RateCard[]): RateCard[] {
  return [...cards].sort(
    (a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime() || a.createdAt.getTime() - b.createdAt.getTime(),
  );
}

/** The card in force at time t (cards sorted by sortRateCards); undefined before the first. */
export function cardAt(sorted: readonly RateCard[], t: number): RateCard | undefined {
  let found: RateCard | undefined;
  for (const c of sorted) {
    if (c.effectiveFrom.getTime() <= t) found = c;
    else break;
  }
  return found;
}

/** One node of one attempt, running [start, end) with `gpus` GPUs. */
export interface UsageInterval {
  start: number;
  end: number;
  gpus: number;
  gpuType: string;
  clusterId: string;
  node: string;
}

/** The parts of a job the cost function reads. */
export interface PricedJob {
  clusterId: string;
  endedAt?: Date | undefined;
  attempts: Array<{
    startedAt?: Date | undefined;
    endedAt?: Date | undefined;
    nodes: Array<{ name: string; gpuIndices: number[] }>;
  }>;
}

/**
 * Usage of a job: every started attempt, every node, from the attempt's start to its end. An
 * attempt still running is counted up to `openEnd` (now, when pricing; the last pricing time, when
 * reporting from stored data); one without its own end inside a finished job ends with the job.
 */
export function jobUsage(job: PricedJob, gpuTypeOf: (node: string) => string, openEnd: Date): UsageInterval[] {
  const out: UsageInterval[] = [];
  for (const a of job.attempts) {
    if (!a.startedAt) continue;
    const start = new Date(a.startedAt).getTime();
    const endDate = a.endedAt ?? job.endedAt ?? openEnd;
    const end = Math.max(start, new Date(endDate).getTime());
    for (const n of a.nodes) {
      out.push({ start, end, gpus: n.gpuIndices.length, gpuType: gpuTypeOf(n.name), clusterId: job.clusterId, node: n.name });
    }
  }
  return out;
}

export interface CostLine {
  gpuType: string;
  /** Calendar month (UTC) of the usage, "YYYY-MM". */
  month: string;
  usd: number;
  gpuHours: number;
}

export interface CostSummary {
  usd: number;
  gpuHours: number;
  lines: CostLine[];
}

export function monthKey(t: number | Date): string {
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}
export function monthStart(t: number | Date): Date {
  const d = new Date(t);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}
export function nextMonthStart(t: number | Date): Date {
  const d = new Date(t);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

/**
 * Price usage: each interval is clipped to [from, to), cut at every rate-card change and every
 * month boundary, and each piece is charged at the price in force when it started.
 */
export function priceUsage(
  intervals: readonly UsageInterval[],
  sortedCards: readonly RateCard[],
  window: { from?: Date; to?: Date } = {},
): CostSummary {
  const lines = new Map<string, CostLine>();
  const from = window.from?.getTime() ?? Number.NEGATIVE_INFINITY;
  const to = window.to?.getTime() ?? Number.POSITIVE_INFINITY;
  const changes = sortedCards.map((c) => c.effectiveFrom.getTime());
  for (const iv of intervals) {
    let t = Math.max(iv.start, from);
    const end = Math.min(iv.end, to);
    while (t < end) {
      const nextChange = changes.find((c) => c > t) ?? Number.POSITIVE_INFINITY;
      const pieceEnd = Math.min(end, nextChange, nextMonthStart(t).getTime());
      const hours = ((pieceEnd - t) / MS_PER_HOUR) * iv.gpus;
      const rate = rateOf(cardAt(sortedCards, t), iv.clusterId, iv.node, iv.gpuType);
      const key = `${iv.gpuType}\u0000${monthKey(t)}`;
      const line = lines.get(key) ?? { gpuType: iv.gpuType, month: monthKey(t), usd: 0, gpuHours: 0 };
      line.usd += hours * rate;
      line.gpuHours += hours;
      lines.set(key, line);
      t = pieceEnd;
    }
  }
  const all = [...lines.values()].sort((a, b) => a.month.localeCompare(b.month) || a.gpuType.localeCompare(b.gpuType));
  return { usd: sum(all.map((l) => l.usd)), gpuHours: sum(all.map((l) => l.gpuHours)), lines: all };
}

/** USD per hour a job burns right now: its open intervals at the price in force at `now`. */
export function burnRate(
  intervals: readonly UsageInterval[],
  sortedCards: readonly RateCard[],
  now: Date,
  openEnd: Date,
): number {
  const card = cardAt(sortedCards, now.getTime());
  return sum(
    intervals.filter((iv) => iv.end >= openEnd.getTime()).map((iv) => iv.gpus * rateOf(card, iv.clusterId, iv.node, iv.gpuType)),
  );
}

export interface Forecast {
  /** Seconds until the job finishes, from its progress rate. */
  etaSeconds: number;
  /** Cost at completion: cost so far + burn rate × ETA. */
  forecastUsd: number;
}

/**
 * Cost at completion from the burn rate and the ETA that progress gives: the progress ratio
 * reached over the attempt's running time so far, extrapolated linearly. Undefined without a
 * usable progress ratio (0 < ratio < 1).
 */
export function forecastCost(input: {
  usd: number;
  burnUsdPerHour: number;
  progressRatio?: number | undefined;
  progressAt?: Date | undefined;
  attemptStartedAt?: Date | undefined;
  now: Date;
}): Forecast | undefined {
  const { progressRatio: r, progressAt, attemptStartedAt, now } = input;
  if (r === undefined || !(r > 0) || r >= 1 || !progressAt || !attemptStartedAt) return undefined;
  const ranMs = new Date(progressAt).getTime() - new Date(attemptStartedAt).getTime();
  if (ranMs <= 0) return undefined;
  const totalMs = ranMs / r;
  const remainingMs = Math.max(0, totalMs - (now.getTime() - new Date(attemptStartedAt).getTime()));
  const etaSeconds = remainingMs / 1000;
  return { etaSeconds, forecastUsd: input.usd + (input.burnUsdPerHour * remainingMs) / MS_PER_HOUR };
}

// ---------- budgets ----------

export const BUDGET_PERIODS = ["monthly", "total"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];
export const BUDGET_ACTIONS = ["alert", "stop"] as const;
export type BudgetAction = (typeof BUDGET_ACTIONS)[number];
export const DEFAULT_THRESHOLDS = [50, 80, 100];

export const budgetScopeSchema = z.discriminatedUnion(
  "type",
  [
    z.object({ type: z.literal("team") }).strict(),
    z.object({ type: z.literal("project"), project: nameSchema }).strict(),
    z.object({ type: z.literal("job"), jobId: z.string().regex(/^[0-9a-f]{24}$/, "must be a job id") }).strict(),
  ],
  { error: "scope.type must be one of team, project, job" },
);
export type BudgetScope = z.infer<typeof budgetScopeSchema>;

export const budgetInputSchema = z
  .object({
    name: nameSchema,
    scope: budgetScopeSchema,
    limitUsd: usdAmountSchema,
    period: z.enum(BUDGET_PERIODS, { error: `must be one of ${BUDGET_PERIODS.join(", ")}` }).default("monthly"),
    /** Percentages of the limit that alert once per period. */
    thresholds: z
      .array(z.number().finite().positive("must be > 0").max(1000, "must be <= 1000"))
      .min(1)
      .max(10)
      .default(DEFAULT_THRESHOLDS)
      .refine((t) => new Set(t).size === t.length, { message: "thresholds must be distinct" })
      .transform((t) => [...t].sort((a, b) => a - b)),
    /** At 100 %: `alert` only, or `stop` the scope's running jobs and refuse new ones. */
    action: z.enum(BUDGET_ACTIONS, { error: `must be one of ${BUDGET_ACTIONS.join(", ")}` }).default("alert"),
    enabled: z.boolean().default(true),
  })
  .strict();
export type BudgetInput = z.input<typeof budgetInputSchema>;
export type BudgetSpec = z.infer<typeof budgetInputSchema>;

export interface BudgetPeriodWindow {
  /** "YYYY-MM" for monthly budgets, "total" otherwise. */
  key: string;
  start?: Date;
  end?: Date;
}

export function budgetPeriodAt(period: BudgetPeriod, now: Date): BudgetPeriodWindow {
  if (period === "total") return { key: "total" };
  return { key: monthKey(now), start: monthStart(now), end: nextMonthStart(now) };
}

/** Thresholds (percent) reached by a spend. */
export function reachedThresholds(thresholds: readonly number[], spendUsd: number, limitUsd: number): number[] {
  if (!(limitUsd > 0)) return [];
  return thresholds.filter((t) => spendUsd >= (limitUsd * t) / 100 - 1e-9);
}

export interface BudgetView {
  id: string;
  team: string;
  name: string;
  scope: BudgetScope;
  limitUsd: number;
  period: BudgetPeriod;
  thresholds: number[];
  action: BudgetAction;
  enabled: boolean;
  revision: number;
  /** Spend in the current period, computed when the view was made. */
  current?: { period: string; spendUsd: number; usedRatio: number; forecastUsd?: number; exhausted: boolean };
  createdAt: string;
  updatedAt: string;
}

/** Cost of a job as stored on it by the cost service. */
export interface JobCost {
  usd: number;
  gpuHours: number;
  /** USD per hour while running (0 once ended). */
  burnUsdPerHour: number;
  forecastUsd?: number;
  etaSeconds?: number;
  lines: CostLine[];
  /** Whether the job has ended and this is its final cost. */
  final: boolean;
  updatedAt: string;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Round money for display and storage (micro-dollars). */
export const roundUsd = (v: number) => Math.round(v * 1e6) / 1e6;
