import { describe, expect, it } from "vitest";
import { couldOutgrowCap } from "./gpu-telemetry";

const job = (createdAt: Date, nodesPerAttempt: number[]) =>
  ({
    createdAt,
    attempts: nodesPerAttempt.map((n) => ({ nodes: Array.from({ length: n }) })),
  }) as unknown as Parameters<typeof couldOutgrowCap>[0];

describe("couldOutgrowCap", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const ago = (s: number) => new Date(now.getTime() - s * 1000);

  it("a young job cannot hold more samples than the cap: no prune needed", () => {
    // 10 min at 5 s on 2 nodes: at most 2 x 121 x 2 = 484 samples.
    expect(couldOutgrowCap(job(ago(600), [2]), now, 5_000, 20_000)).toBe(false);
  });

  it("an old or wide job can: pruned", () => {
    expect(couldOutgrowCap(job(ago(86_400), [1]), now, 5_000, 20_000)).toBe(true);
    expect(couldOutgrowCap(job(ago(1_800), [1, 64]), now, 5_000, 20_000)).toBe(true);
  });
});
