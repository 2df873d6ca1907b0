import { describe, expect, it } from "vitest";
import { parsePayload, QUEUE_NAMES, QUEUES, queuesConsumedBy } from "./queues";

describe("queue catalog", () => {
  it("gives every queue exactly one consuming service", () => {
    const consumed = ["api", "launcher", "monitor", "cost", "alerting"].flatMap((s) => queuesConsumedBy(s as never));
    expect(consumed.sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it("keeps the shipped queue names (new queues are only ever added)", () => {
    expect(QUEUE_NAMES.slice(0, 5)).toEqual(["launch", "control", "monitor", "cost", "alerts"]);
    expect(QUEUE_NAMES).toContain("deliveries");
    expect(QUEUE_NAMES).toContain("checkpoints");
  });

  it("takes a scheduled cost tick without a job, but not a started/ended event without one", () => {
    const at = new Date().toISOString();
    expect(QUEUES.cost.payload.safeParse({ event: "tick", at }).success).toBe(true);
    expect(QUEUES.cost.payload.safeParse({ event: "started", at }).success).toBe(false);
    expect(QUEUES.cost.payload.safeParse({ event: "ended", jobId: "0123456789abcdef01234567", at }).success).toBe(true);
  });

  it("bounds alert facts and de-duplication keys", () => {
    const base = { type: "budget.threshold", severity: "warning", message: "m", at: new Date().toISOString() };
    expect(
      QUEUES.alerts.payload.safeParse({ ...base, dedupKey: "budget:abc:2026-01:50", facts: { threshold: 50 } }).success,
    ).toBe(true);
    expect(QUEUES.alerts.payload.safeParse({ ...base, dedupKey: "has space" }).success).toBe(false);
    expect(QUEUES.alerts.payload.safeParse({ ...base, facts: { secret: { nested: 1 } } }).success).toBe(false);
    expect(QUEUES.alerts.payload.safeParse({ ...base, type: "made.up" }).success).toBe(false);
  });

  it("refuses payloads with extra fields, so no secret can ride along", () => {
    expect(() => parsePayload("launch", { jobId: "0123456789abcdef01234567", privateKey: "x" })).toThrow();
    expect(parsePayload("launch", { jobId: "0123456789abcdef01234567" })).toEqual({ jobId: "0123456789abcdef01234567" });
  });

  it("validates ids", () => {
    expect(QUEUES.control.payload.safeParse({ jobId: "nope", attemptId: "a1" }).success).toBe(false);
  });
});
