import type { AllocationDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { Types } from "mongoose";
import { describe, expect, it } from "vitest";
import { planPreemption } from "./preemption";

const node = (name: string, gpus: number) => ({
  name,
  host: "127.0.0.1",
  port: 22,
  user: "u",
  gpus,
  gpuType: "cpu",
  workRoot: "/w",
});

/** A job holding `gpus` GPUs on `on`, started `startedMinutesAgo` ago. */
function running(
  name: string,
  opts: {
    priority?: number;
    preemptible?: boolean;
    on: string;
    gpus: number;
    startedMinutesAgo?: number;
    leaving?: boolean;
    firstGpu?: number;
  },
): { job: JobDoc; allocation: AllocationDoc } {
  const _id = new Types.ObjectId();
  const attemptId = `a1-${name}`;
  const startedAt = new Date(Date.UTC(2026, 0, 1) - (opts.startedMinutesAgo ?? 10) * 60_000);
  const job = {
    _id,
    name,
    status: "RUNNING",
    priority: opts.priority ?? 0,
    createdAt: new Date(Date.UTC(2025, 0, 1)),
    currentAttemptId: attemptId,
    attempts: [{ id: attemptId, number: 1, startedAt, nodes: [], masterAddr: "", createdAt: startedAt }],
    spec: { priority: opts.priority ?? 0, ...(opts.preemptible ? { preemptible: true } : {}) },
    ...(opts.leaving ? { preemptRequest: { byJobId: "x", byJobName: "x", requestedAt: startedAt, deadline: startedAt } } : {}),
  } as unknown as JobDoc;
  const allocation: AllocationDoc = {
    jobId: _id.toString(),
    attemptId,
    at: startedAt,
    nodes: [{ node: opts.on, gpuIndices: Array.from({ length: opts.gpus }, (_, i) => i + (opts.firstGpu ?? 0)), ports: [] }],
  };
  return { job, allocation };
}

function plan(headPriority: number, gpus: number, jobs: Array<ReturnType<typeof running>>, nodes = [node("n1", 2)]) {
  const head = {
    _id: new Types.ObjectId(),
    name: "head",
    priority: headPriority,
    spec: { priority: headPriority },
  } as unknown as JobDoc;
  const cluster = {
    nodes,
    ports: { min: 30000, max: 30063 },
    allocations: jobs.map((j) => j.allocation),
  } as unknown as ClusterDoc;
  const request = { jobId: head._id.toString(), attemptId: "a1-head", nodes: 1, gpusPerNode: gpus, portsPerNode: 0 };
  const out = planPreemption(
    head,
    request,
    cluster,
    jobs.map((j) => j.job),
  );
  return out.kind === "preempt"
    ? out.victims.map((v) => v.name)
    : out.kind === "wait"
      ? ["wait", ...out.pending.map((p) => p.name)]
      : [];
}

describe("choosing what to preempt for the head of the queue", () => {
  it("preempts a lower-priority preemptible job whose release lets the head fit", () => {
    expect(plan(10, 2, [running("low", { preemptible: true, on: "n1", gpus: 2 })])).toEqual(["low"]);
  });

  it("never preempts a job that is not preemptible, nor one of equal or higher priority", () => {
    expect(plan(10, 2, [running("pinned", { on: "n1", gpus: 2 })])).toEqual([]);
    expect(plan(5, 2, [running("same", { priority: 5, preemptible: true, on: "n1", gpus: 2 })])).toEqual([]);
    expect(plan(5, 2, [running("higher", { priority: 9, preemptible: true, on: "n1", gpus: 2 })])).toEqual([]);
  });

  it("preempts nothing when even every candidate's release would not make room", () => {
    const jobs = [
      running("low", { preemptible: true, on: "n1", gpus: 1 }),
      running("pinned", { on: "n1", gpus: 1, firstGpu: 1 }),
    ];
    expect(plan(10, 2, jobs)).toEqual([]);
  });

  it("takes the lowest priority first, then the youngest, and no more than needed", () => {
    const jobs = [
      running("old-low", { priority: -5, preemptible: true, on: "n1", gpus: 1, startedMinutesAgo: 60 }),
      running("young-low", { priority: -5, preemptible: true, on: "n1", gpus: 1, startedMinutesAgo: 1, firstGpu: 1 }),
      running("mid", { priority: 0, preemptible: true, on: "n2", gpus: 2 }),
    ];
    const nodes = [node("n1", 2), node("n2", 2)];
    expect(plan(10, 1, jobs, nodes)).toEqual(["young-low"]);
    // Two GPUs on one node: both low jobs on n1 (lowest priority) rather than the one mid job on n2.
    expect(plan(10, 2, jobs, nodes)).toEqual(["young-low", "old-low"]);
  });

  it("drops a victim taken first when a later one alone is enough", () => {
    const jobs = [
      running("small", { priority: -5, preemptible: true, on: "n1", gpus: 1 }),
      running("pinned", { on: "n1", gpus: 1, firstGpu: 1 }),
      running("big", { priority: 0, preemptible: true, on: "n2", gpus: 2 }),
    ];
    expect(plan(10, 2, jobs, [node("n1", 2), node("n2", 2)])).toEqual(["big"]);
  });

  it("waits for jobs already being preempted instead of preempting more", () => {
    const jobs = [
      running("leaving", { preemptible: true, on: "n1", gpus: 2, leaving: true }),
      running("other", { preemptible: true, on: "n2", gpus: 2 }),
    ];
    expect(plan(10, 2, jobs, [node("n1", 2), node("n2", 2)])).toEqual(["wait", "leaving"]);
  });
});
