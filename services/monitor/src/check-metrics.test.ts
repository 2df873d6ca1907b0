import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CheckMetrics } from "./check-metrics";

async function lagCounts(registry: Registry): Promise<{ count: number; sum: number }> {
  const [metric] = (await registry.getMetricsAsJSON()).filter((m) => m.name === "trainyard_monitor_check_lag_seconds");
  const values = (metric?.values ?? []) as Array<{ metricName?: string; value: number }>;
  const get = (suffix: string) =>
    values.find((v) => v.metricName === `trainyard_monitor_check_lag_seconds_${suffix}`)?.value ?? 0;
  return { count: get("count"), sum: get("sum") };
}

describe("CheckMetrics", () => {
  it("lag is the time since the previous check of the same attempt beyond the interval; a first check has none", async () => {
    const registry = new Registry();
    const m = new CheckMetrics(registry, 5_000);
    m.checked("c1", "a1", 0);
    expect(await lagCounts(registry)).toEqual({ count: 0, sum: 0 });
    m.checked("c1", "a1", 4_000); // early: no lag
    m.checked("c1", "a1", 11_000); // 7 s after the previous: 2 s late
    expect(await lagCounts(registry)).toEqual({ count: 2, sum: 2 });
  });

  it("forgets attempts no longer running, so a later check of one counts as a first", async () => {
    const registry = new Registry();
    const m = new CheckMetrics(registry, 5_000);
    m.checked("c1", "a1", 0);
    m.checked("c1", "a2", 0);
    m.keepOnly("c1", new Set(["a2"]));
    m.checked("c1", "a1", 60_000);
    m.checked("c1", "a2", 60_000);
    expect(await lagCounts(registry)).toEqual({ count: 1, sum: 55 });
  });
});
