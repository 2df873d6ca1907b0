import { createLogger } from "@trainyard/common";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startReconciler } from "./reconcile";

describe("startReconciler", () => {
  it("sweeps once at start, never two sweeps at once, and survives a failed sweep", async () => {
    let runs = 0;
    let active = 0;
    let overlapped = false;
    let release: () => void = () => undefined;
    const registry = new Registry();
    const r = startReconciler({
      intervalMs: 60_000,
      logger: createLogger("test", "silent"),
      registry,
      sweep: async () => {
        runs++;
        active++;
        if (active > 1) overlapped = true;
        await new Promise<void>((res) => {
          release = res;
        });
        active--;
        if (runs === 1) throw new Error("database away");
      },
    });
    expect(runs).toBe(1);
    // A sweep asked for while one runs joins it.
    const joined = r.runOnce();
    expect(runs).toBe(1);
    release();
    await joined;
    const next = r.runOnce();
    expect(runs).toBe(2);
    release();
    await next;
    await r.stop();
    expect(overlapped).toBe(false);
    const counts = (await registry.getSingleMetric("trainyard_reconcile_sweeps_total")!.get()).values;
    expect(Object.fromEntries(counts.map((v) => [v.labels.outcome, v.value]))).toEqual({ error: 1, ok: 1 });
  });
});
