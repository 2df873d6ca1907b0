import type { JobDoc } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import { Types } from "mongoose";
import { describe, expect, it, vi } from "vitest";
import { launchAbandoned, scheduleClusterCheck } from "./reconcile";

const job = (over: Partial<JobDoc>): JobDoc =>
  ({
    _id: new Types.ObjectId(),
    status: "LAUNCHING",
    currentAttemptId: "a1-x",
    attempts: [{ id: "a1-x", number: 1, masterAddr: "", createdAt: new Date(1_000), nodes: [] }],
    ...over,
  }) as unknown as JobDoc;

describe("launchAbandoned", () => {
  it("is true only for a LAUNCHING job whose launch lease has run out", () => {
    expect(launchAbandoned(job({ launchLeaseUntil: new Date(5_000) }), 30_000, 4_999)).toBe(false);
    expect(launchAbandoned(job({ launchLeaseUntil: new Date(5_000) }), 30_000, 5_001)).toBe(true);
    expect(launchAbandoned(job({ status: "RUNNING", launchLeaseUntil: new Date(0) }), 30_000, 5_001)).toBe(false);
  });

  it("counts a launch from before leases existed from its attempt's creation", () => {
    expect(launchAbandoned(job({}), 30_000, 30_000)).toBe(false);
    expect(launchAbandoned(job({}), 30_000, 31_001)).toBe(true);
  });
});

describe("scheduleClusterCheck", () => {
  const sent = () => {
    const calls: Array<{ queue: string; data: unknown; opts: { delay: number; jobId: string } }> = [];
    const bus = { send: async (queue: string, data: unknown, opts: never) => void calls.push({ queue, data, opts }) };
    return { bus: bus as unknown as QueueBus, calls };
  };

  it("names the interval slot the check falls in, so every ask within a slot is one message", async () => {
    vi.useFakeTimers({ now: 12_300 });
    try {
      const { bus, calls } = sent();
      await scheduleClusterCheck(bus, 5_000, "c1"); // due at 17,300: slot 3
      await scheduleClusterCheck(bus, 5_000, "c1", 11_000); // a check that began at 11,000: due at 16,000, slot 3
      expect(calls.map((c) => [c.queue, c.data, c.opts])).toEqual([
        ["cluster-checks", { clusterId: "c1" }, { delay: 5_000, jobId: "mon-c1-3" }],
        ["cluster-checks", { clusterId: "c1" }, { delay: 3_700, jobId: "mon-c1-3" }],
      ]);
      // A check that ran longer than the interval: the next one is due at once, in a later slot than its own.
      await scheduleClusterCheck(bus, 5_000, "c1", 5_000);
      expect(calls[2]!.opts).toEqual({ delay: 0, jobId: "mon-c1-2" });
    } finally {
      vi.useRealTimers();
    }
  });
});
