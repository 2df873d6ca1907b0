import { describe, expect, it } from "vitest";
import {
  budgetInputSchema,
  budgetPeriodAt,
  burnRate,
  forecastCost,
  jobUsage,
  priceUsage,
  type RateCard,
  rateCardInputSchema,
  reachedThresholds,
  sortRateCards,
} from "./pricing";

const H = 3_600_000;
const T0 = Date.parse("2026-03-10T10:00:00Z");
const card = (from: number, gpuTypes: Record<string, number>, extra: Partial<RateCard> = {}): RateCard => ({
  id: `c${from}`,
  effectiveFrom: new Date(from),
  gpuTypes,
  nodes: [],
  defaultUsdPerGpuHour: 0,
  createdAt: new Date(from),
  ...extra,
});
const gpuType = (types: Record<string, string>) => (n: string) => types[n] ?? "cpu";
const job = (attempts: PricedAttempt[], endedAt?: number) => ({
  clusterId: "c1",
  ...(endedAt ? { endedAt: new Date(endedAt) } : {}),
  attempts: attempts.map((a) => ({
    ...(a.start !== undefined ? { startedAt: new Date(a.start) } : {}),
    ...(a.end !== undefined ? { endedAt: new Date(a.end) } : {}),
    nodes: a.nodes.map(([name, gpus]) => ({ name, gpuIndices: Array.from({ length: gpus }, (_, i) => i) })),
  })),
});
interface PricedAttempt {
  start?: number;
  end?: number;
  nodes: Array<[string, number]>;
}

describe("the cost function", () => {
  it("charges Σ attempts Σ nodes GPUs × rate × running time", () => {
    const j = job([
      {
        start: T0,
        end: T0 + 2 * H,
        nodes: [
          ["n1", 2],
          ["n2", 2],
        ],
      }, // 8 GPU-hours of a100
      { start: T0 + 3 * H, end: T0 + 4 * H, nodes: [["n1", 1]] }, // 1 GPU-hour of a100
      { nodes: [["n1", 4]] }, // never started: free
    ]);
    const s = priceUsage(jobUsage(j, gpuType({}), new Date(T0 + 10 * H)), [card(0, { cpu: 2 })]);
    expect(s.gpuHours).toBeCloseTo(9);
    expect(s.usd).toBeCloseTo(18);
  });

  it("is the same however often it is computed (a repeated tick cannot double-charge)", () => {
    const j = job([{ start: T0, nodes: [["n1", 1]] }]);
    const now = new Date(T0 + 30 * 60_000);
    const once = priceUsage(jobUsage(j, gpuType({}), now), [card(0, { cpu: 4 })]);
    const again = priceUsage(jobUsage(j, gpuType({}), now), [card(0, { cpu: 4 })]);
    expect(once).toEqual(again);
    expect(once.usd).toBeCloseTo(2);
  });

  it("charges each period at its own price when the card changes mid-job", () => {
    // Runs 10:00-14:00 on 2 GPUs; price 1 $/GPU-h until 12:00, then 3 $/GPU-h.
    const j = job([{ start: T0, end: T0 + 4 * H, nodes: [["n1", 2]] }]);
    const cards = sortRateCards([card(T0 + 2 * H, { cpu: 3 }), card(0, { cpu: 1 })]);
    const s = priceUsage(jobUsage(j, gpuType({}), new Date(T0 + 5 * H)), cards);
    expect(s.usd).toBeCloseTo(2 * 2 * 1 + 2 * 2 * 3);
    expect(s.gpuHours).toBeCloseTo(8);
  });

  it("prices usage before the first card at 0, and unknown GPU types at the default", () => {
    const j = job([
      {
        start: T0,
        end: T0 + 2 * H,
        nodes: [
          ["n1", 1],
          ["n2", 1],
        ],
      },
    ]);
    const cards = [card(T0 + H, { a100: 10 }, { defaultUsdPerGpuHour: 0.5 })];
    const s = priceUsage(jobUsage(j, gpuType({ n1: "a100", n2: "weird" }), new Date(T0 + 3 * H)), cards);
    expect(s.usd).toBeCloseTo(10 + 0.5);
    expect(s.lines.map((l) => [l.gpuType, l.gpuHours])).toEqual([
      ["a100", 2],
      ["weird", 2],
    ]);
  });

  it("lets a per-node override win over the GPU type's price", () => {
    const j = job([
      {
        start: T0,
        end: T0 + H,
        nodes: [
          ["n1", 1],
          ["n2", 1],
        ],
      },
    ]);
    const cards = [card(0, { cpu: 1 }, { nodes: [{ clusterId: "c1", clusterName: "c", node: "n2", usdPerGpuHour: 5 }] })];
    expect(priceUsage(jobUsage(j, gpuType({}), new Date(T0 + H)), cards).usd).toBeCloseTo(6);
  });

  it("splits usage at month boundaries (UTC) and clips to a window", () => {
    const end = Date.parse("2026-04-01T00:00:00Z");
    const j = job([{ start: end - 2 * H, end: end + 3 * H, nodes: [["n1", 1]] }]);
    const usage = jobUsage(j, gpuType({}), new Date(end + 10 * H));
    const s = priceUsage(usage, [card(0, { cpu: 1 })]);
    expect(s.lines.map((l) => [l.month, l.gpuHours])).toEqual([
      ["2026-03", 2],
      ["2026-04", 3],
    ]);
    expect(priceUsage(usage, [card(0, { cpu: 1 })], { from: new Date(end) }).usd).toBeCloseTo(3);
    expect(priceUsage(usage, [card(0, { cpu: 1 })], { to: new Date(end - H) }).usd).toBeCloseTo(1);
  });

  it("counts a running attempt up to openEnd and an attempt of an ended job up to the job's end", () => {
    const running = job([{ start: T0, nodes: [["n1", 1]] }]);
    expect(priceUsage(jobUsage(running, gpuType({}), new Date(T0 + H)), [card(0, { cpu: 1 })]).usd).toBeCloseTo(1);
    const ended = job([{ start: T0, nodes: [["n1", 1]] }], T0 + 2 * H);
    expect(priceUsage(jobUsage(ended, gpuType({}), new Date(T0 + 9 * H)), [card(0, { cpu: 1 })]).usd).toBeCloseTo(2);
  });

  it("gives the burn rate of what runs now at the current price", () => {
    const j = job([
      { start: T0, end: T0 + H, nodes: [["n1", 4]] },
      { start: T0 + H, nodes: [["n1", 2]] },
    ]);
    const now = new Date(T0 + 2 * H);
    const cards = sortRateCards([card(0, { cpu: 1 }), card(T0 + 90 * 60_000, { cpu: 2 })]);
    expect(burnRate(jobUsage(j, gpuType({}), now), cards, now, now)).toBeCloseTo(4);
  });
});

describe("the forecast", () => {
  it("extrapolates progress linearly: cost so far + burn × ETA", () => {
    const start = new Date(T0);
    // 25 % done after 1 h, observed now: 3 h to go at 2 $/h.
    const f = forecastCost({
      usd: 2,
      burnUsdPerHour: 2,
      progressRatio: 0.25,
      progressAt: new Date(T0 + H),
      attemptStartedAt: start,
      now: new Date(T0 + H),
    });
    expect(f?.etaSeconds).toBeCloseTo(3 * 3600);
    expect(f?.forecastUsd).toBeCloseTo(8);
  });

  it("has nothing to say without usable progress", () => {
    const base = {
      usd: 1,
      burnUsdPerHour: 1,
      attemptStartedAt: new Date(T0),
      progressAt: new Date(T0 + H),
      now: new Date(T0 + H),
    };
    expect(forecastCost({ ...base })).toBeUndefined();
    expect(forecastCost({ ...base, progressRatio: 0 })).toBeUndefined();
    expect(forecastCost({ ...base, progressRatio: 1 })).toBeUndefined();
  });
});

describe("budgets", () => {
  it("default to 50/80/100 %, monthly, alert only, and sort thresholds", () => {
    const b = budgetInputSchema.parse({ name: "b", scope: { type: "team" }, limitUsd: 100 });
    expect(b).toMatchObject({ thresholds: [50, 80, 100], period: "monthly", action: "alert", enabled: true });
    expect(budgetInputSchema.parse({ name: "b", scope: { type: "team" }, limitUsd: 1, thresholds: [90, 10] }).thresholds).toEqual(
      [10, 90],
    );
  });

  it("refuse bad input with clear messages", () => {
    const bad = budgetInputSchema.safeParse({
      name: "b",
      scope: { type: "galaxy" },
      limitUsd: -1,
      thresholds: [50, 50],
      action: "nuke",
    });
    expect(bad.success).toBe(false);
    const msgs = bad.error!.issues.map((i) => i.message).join("; ");
    expect(msgs).toContain("scope.type must be one of team, project, job");
    expect(msgs).toContain("must be > 0");
    expect(msgs).toContain("alert, stop");
  });

  it("know their period and which thresholds a spend reached", () => {
    const now = new Date("2026-02-14T12:00:00Z");
    expect(budgetPeriodAt("monthly", now)).toEqual({
      key: "2026-02",
      start: new Date("2026-02-01T00:00:00Z"),
      end: new Date("2026-03-01T00:00:00Z"),
    });
    expect(budgetPeriodAt("total", now)).toEqual({ key: "total" });
    expect(reachedThresholds([50, 80, 100], 79.99, 100)).toEqual([50]);
    expect(reachedThresholds([50, 80, 100], 100, 100)).toEqual([50, 80, 100]);
  });
});

describe("the rate card input", () => {
  it("takes GPU types, node overrides and an effective date; refuses duplicates and negatives", () => {
    expect(
      rateCardInputSchema.parse({
        gpuTypes: { a100: 2.5 },
        nodes: [{ cluster: "c", node: "n1", usdPerGpuHour: 1 }],
        effectiveFrom: "2026-01-01T00:00:00Z",
      }),
    ).toMatchObject({ defaultUsdPerGpuHour: 0 });
    expect(rateCardInputSchema.safeParse({ gpuTypes: { a100: -1 } }).success).toBe(false);
    expect(
      rateCardInputSchema.safeParse({
        nodes: [
          { cluster: "c", node: "n1", usdPerGpuHour: 1 },
          { cluster: "c", node: "n1", usdPerGpuHour: 2 },
        ],
      }).success,
    ).toBe(false);
    expect(rateCardInputSchema.safeParse({ effectiveFrom: "yesterday" }).success).toBe(false);
  });
});
