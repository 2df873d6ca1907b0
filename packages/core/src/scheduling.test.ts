import type { QueueBus } from "@trainyard/runtime";
import { Types } from "mongoose";
import { describe, expect, it } from "vitest";
import { compareQueued, explainWait, requestSchedulingPass, SCHEDULE_SLOT_MS, withDefaultPriority } from "./scheduling";

const job = (priority: number | undefined, createdAt: string, id = new Types.ObjectId()) => ({
  _id: id,
  createdAt: new Date(createdAt),
  ...(priority === undefined ? {} : { priority }),
});

describe("queue order", () => {
  it("is priority descending, then oldest first; a job without a priority counts as 0", () => {
    const a = job(0, "2026-01-01T00:00:01Z");
    const b = job(5, "2026-01-01T00:00:03Z");
    const c = job(undefined, "2026-01-01T00:00:00Z");
    const d = job(-1, "2025-01-01T00:00:00Z");
    const e = job(5, "2026-01-01T00:00:02Z");
    expect([a, b, c, d, e].sort(compareQueued)).toEqual([e, b, c, a, d]);
  });

  it("breaks a tie in submit time by id, so every replica walks the same order", () => {
    const x = job(0, "2026-01-01T00:00:00Z", new Types.ObjectId("000000000000000000000002"));
    const y = job(0, "2026-01-01T00:00:00Z", new Types.ObjectId("000000000000000000000001"));
    expect([x, y].sort(compareQueued)).toEqual([y, x]);
  });
});

describe("a team's default priority", () => {
  const spec = (priority?: number): { name: string; priority?: number } => ({
    name: "a",
    ...(priority === undefined ? {} : { priority }),
  });

  it("fills in a spec submitted without a priority", () => {
    expect(withDefaultPriority({ ...spec(), command: ["x"] }, 7)).toEqual({ name: "a", command: ["x"], priority: 7 });
  });

  it("never overrides a priority the user gave, 0 included", () => {
    expect(withDefaultPriority(spec(0), 7)).toEqual({ name: "a", priority: 0 });
    expect(withDefaultPriority(spec(-3), 7)).toEqual({ name: "a", priority: -3 });
  });
});

describe("requestSchedulingPass", () => {
  const recorder = () => {
    const sent: Array<{ name: string; payload: unknown; opts: { jobId?: string; delay?: number } }> = [];
    const bus = {
      send: async (name: string, payload: unknown, opts: { jobId?: string; delay?: number } = {}) => {
        sent.push({ name, payload, opts });
      },
    } as unknown as QueueBus;
    return { sent, bus };
  };

  it("gives every request in one slot the same message id, delayed to the slot's end", async () => {
    const { sent, bus } = recorder();
    const cluster = new Types.ObjectId();
    const t0 = 1_000 * SCHEDULE_SLOT_MS + 10;
    await requestSchedulingPass(bus, cluster, t0);
    // Another process (its own bus) asking in the same slot sends the same id: BullMQ keeps one.
    const other = recorder();
    await requestSchedulingPass(other.bus, cluster, t0 + SCHEDULE_SLOT_MS - 20);
    await requestSchedulingPass(bus, cluster, t0 + SCHEDULE_SLOT_MS);
    expect(sent.map((s) => s.opts.jobId)).toEqual([`sched-${cluster}-1000`, `sched-${cluster}-1001`]);
    expect(other.sent.map((s) => s.opts.jobId)).toEqual([`sched-${cluster}-1000`]);
    // The pass starts after every request of its slot was made.
    expect(t0 + sent[0]!.opts.delay!).toBe(1_001 * SCHEDULE_SLOT_MS);
    expect(t0 + SCHEDULE_SLOT_MS - 20 + other.sent[0]!.opts.delay!).toBe(1_001 * SCHEDULE_SLOT_MS);
    expect(sent[0]!.payload).toEqual({ clusterId: cluster.toString() });
    expect(sent.every((s) => s.name === "schedule" && !s.opts.jobId?.includes(":"))).toBe(true);
  });

  it("sends a slot's message once per process, for each cluster, and again after a failed send", async () => {
    const sent: string[] = [];
    let fail = false;
    const bus = {
      send: async (_name: string, _payload: unknown, opts: { jobId?: string } = {}) => {
        if (fail) throw new Error("redis down");
        sent.push(opts.jobId!);
      },
    } as unknown as QueueBus;
    const [a, b] = [new Types.ObjectId(), new Types.ObjectId()];
    const t0 = 2_000 * SCHEDULE_SLOT_MS;
    await Promise.all(Array.from({ length: 50 }, (_, i) => requestSchedulingPass(bus, a, t0 + i)));
    await requestSchedulingPass(bus, b, t0 + 1);
    expect(sent).toEqual([`sched-${a}-2000`, `sched-${b}-2000`]);

    fail = true;
    await expect(requestSchedulingPass(bus, a, t0 + SCHEDULE_SLOT_MS)).rejects.toThrow("redis down");
    fail = false;
    await requestSchedulingPass(bus, a, t0 + SCHEDULE_SLOT_MS + 1);
    await requestSchedulingPass(bus, a, t0 + SCHEDULE_SLOT_MS + 2);
    expect(sent).toEqual([`sched-${a}-2000`, `sched-${b}-2000`, `sched-${a}-2001`]);
  });
});

describe("explainWait", () => {
  const base = { status: "QUEUED", clusterName: "gpu-a" };
  it("the head says what it waits for", () => {
    expect(
      explainWait(
        {
          ...base,
          waitingReason: "waiting for capacity: needs 1 node with 2 free GPUs each; 0 nodes have enough free GPUs (n1: 0 free)",
        },
        { ahead: 0, higher: 0 },
      ),
    ).toMatch(/^waiting for capacity: needs 1 node/);
    expect(explainWait(base, { ahead: 0, higher: 0 })).toBe("first in the queue: waiting for the next scheduling pass");
  });

  it("a job behind others names how many and how many outrank it", () => {
    expect(explainWait(base, { ahead: 3, higher: 2 })).toBe("behind 3 jobs in cluster 'gpu-a' queue (2 of higher priority)");
    expect(explainWait(base, { ahead: 1, higher: 0 })).toBe("behind 1 job in cluster 'gpu-a' queue");
    expect(
      explainWait({ ...base, waitingReason: "waiting for team quota: 2 of 2 concurrent jobs running" }, { ahead: 1, higher: 0 }),
    ).toBe("behind 1 job in cluster 'gpu-a' queue; last seen waiting for team quota: 2 of 2 concurrent jobs running");
  });

  it("a retry in backoff says when it is due", () => {
    const at = new Date(Date.now() + 60_000);
    expect(explainWait({ ...base, status: "RETRYING", retryAt: at }, { ahead: 0, higher: 0 })).toBe(
      `retry backoff: the next attempt is due at ${at.toISOString()}`,
    );
  });
});
