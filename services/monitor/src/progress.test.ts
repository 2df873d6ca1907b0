import { describe, expect, it } from "vitest";
import { progressFromMetrics } from "./progress";

const now = new Date("2026-01-01T00:00:00Z");

describe("progressFromMetrics", () => {
  it("takes the newest line with a step and computes the ratio", () => {
    const p = progressFromMetrics(
      [
        { step: 1, total_steps: 40, loss: 1.5 },
        { step: 20, total_steps: 40, loss: 0.5 },
        { checkpoint: "/x", step: 20 },
        { note: "no step" },
      ],
      now,
    );
    expect(p).toEqual({ step: 20, totalSteps: 40, ratio: 0.5, loss: 0.5, updatedAt: now });
  });

  it("returns undefined without any step line, and omits ratio without a total", () => {
    expect(progressFromMetrics([{ loss: 1 }], now)).toBeUndefined();
    expect(progressFromMetrics([{ step: 7 }], now)).toEqual({ step: 7, updatedAt: now });
  });

  it("caps the ratio at 1", () => {
    expect(progressFromMetrics([{ step: 50, total_steps: 40 }], now)?.ratio).toBe(1);
  });
});
