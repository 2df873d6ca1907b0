import { describe, expect, it } from "vitest";
import { parsePayload, QUEUE_NAMES, QUEUES, queuesConsumedBy } from "./queues";

describe("queue catalog", () => {
  it("gives every queue exactly one consuming service", () => {
    const consumed = ["api", "launcher", "monitor", "cost", "alerting"].flatMap((s) => queuesConsumedBy(s as never));
    expect(consumed.sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it("keeps the shipped queue names", () => {
    expect(QUEUE_NAMES).toEqual(["launch", "control", "monitor", "cost", "alerts"]);
  });

  it("refuses payloads with extra fields, so no secret can ride along", () => {
    expect(() => parsePayload("launch", { jobId: "0123456789abcdef01234567", privateKey: "x" })).toThrow();
    expect(parsePayload("launch", { jobId: "0123456789abcdef01234567" })).toEqual({ jobId: "0123456789abcdef01234567" });
  });

  it("validates ids", () => {
    expect(QUEUES.control.payload.safeParse({ jobId: "nope", attemptId: "a1" }).success).toBe(false);
  });
});
