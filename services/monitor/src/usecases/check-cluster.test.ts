import type { AttemptNodeDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import type { ProbeResult } from "@trainyard/frameworks";
import { Types } from "mongoose";
import { Registry } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { CheckMetrics } from "../check-metrics";
import type { MonitorDeps } from "../deps";
import { checkAttempt } from "./check-attempt";
import { checkCluster, limiter, type NodeProbes, observationsOf, probeTargets } from "./check-cluster";

// What an attempt's check does with the observations is check-attempt's (and its tests'): here only who gets one.
vi.mock("./check-attempt", () => ({ checkAttempt: vi.fn(async () => {}) }));

const cluster = {
  name: "c",
  nodes: [
    { name: "n1", workRoot: "/w1" },
    { name: "n2", workRoot: "/w2" },
  ],
} as unknown as ClusterDoc;

const node = (name: string, nodeRank: number): AttemptNodeDoc => ({
  name,
  host: "h",
  nodeRank,
  gpuIndices: [0],
  ports: [],
  state: "running",
  missedChecks: 0,
});

const job = (attemptId: string, nodes: AttemptNodeDoc[]): JobDoc =>
  ({
    _id: new Types.ObjectId(),
    currentAttemptId: attemptId,
    // An earlier attempt on other nodes is never probed.
    attempts: [
      { id: `old-${attemptId}`, nodes: [node("n2", 0)] },
      { id: attemptId, nodes },
    ],
  }) as unknown as JobDoc;

const probe = (alive: boolean): ProbeResult => ({ started: true, alive, logSize: 0, logTail: "", metrics: [] });

describe("one probe per node for all its attempts", () => {
  const single = job("a1", [node("n1", 0)]);
  const gang = job("a2", [node("n1", 0), node("n2", 1)]);
  const removed = job("a3", [node("gone", 0)]);

  it("groups the current attempts of every running job by node", () => {
    const targets = probeTargets(cluster, [single, gang, removed]);
    expect([...targets.keys()]).toEqual(["n1", "n2"]);
    expect(targets.get("n1")).toEqual([
      { attemptId: "a1", dir: `/w1/jobs/${single._id}/a1` },
      { attemptId: "a2", dir: `/w1/jobs/${gang._id}/a2` },
    ]);
    expect(targets.get("n2")).toEqual([{ attemptId: "a2", dir: `/w2/jobs/${gang._id}/a2` }]);
  });

  it("gives each attempt what each of its nodes saw of it, or why that node could not say", () => {
    const seen: NodeProbes = new Map<string, Map<string, ProbeResult> | Error>([
      ["n1", new Map([["a2", probe(true)]])],
      ["n2", new Error("connect ETIMEDOUT")],
    ]);
    expect(observationsOf(cluster, gang, seen)).toEqual([
      { node: gang.attempts[1]!.nodes[0], probe: probe(true) },
      { node: gang.attempts[1]!.nodes[1], error: "connect ETIMEDOUT" },
    ]);
    // A node that answered but did not report the attempt is a miss, never "processes gone".
    expect(observationsOf(cluster, single, seen)).toEqual([
      { node: single.attempts[1]!.nodes[0], error: "the node probe did not report this attempt" },
    ]);
    expect(observationsOf(cluster, removed, seen)).toEqual([
      { node: removed.attempts[1]!.nodes[0], error: "node no longer in cluster" },
    ]);
  });
});

describe("a node slow to answer holds back only the attempts on it", () => {
  const onN1 = job("a1", [node("n1", 0)]);
  const onN2 = job("a2", [node("n2", 0)]);
  const withId = { ...cluster, _id: new Types.ObjectId() } as ClusterDoc;
  const clusterId = withId._id.toString();

  it("applies the others, schedules the next check on time, and leaves the slow node to the check waiting for it", async () => {
    vi.mocked(checkAttempt).mockClear();
    let answerN2: (m: Map<string, ProbeResult>) => void = () => {};
    const probed: string[] = [];
    const sent: unknown[] = [];
    const deps = {
      repos: {
        clusters: { byId: async () => withId },
        jobs: { listByCluster: async () => [onN1, onN2] },
        telemetry: { add: async () => {} },
      },
      gateway: {
        probeAttempts: (_c: ClusterDoc, name: string, targets: Array<{ attemptId: string }>) => {
          probed.push(name);
          if (name === "n1") return Promise.resolve(new Map(targets.map((t) => [t.attemptId, probe(true)])));
          return new Promise<Map<string, ProbeResult>>((resolve) => {
            answerN2 = resolve;
          });
        },
      },
      bus: { send: async (_q: string, data: unknown) => void sent.push(data) },
      logger: { warn: () => {}, debug: () => {} },
      intervalMs: 50,
      checks: new CheckMetrics(new Registry(), 50),
      probesInFlight: new Set<string>(),
    } as unknown as MonitorDeps;
    const applied = () => vi.mocked(checkAttempt).mock.calls.map((c) => c[2].currentAttemptId);

    const first = checkCluster(deps, clusterId);
    await vi.waitFor(() => expect(sent).toHaveLength(1)); // one interval in, n2 still silent
    expect(applied()).toEqual(["a1"]);
    expect([...deps.probesInFlight]).toEqual([`${clusterId}/n2`]);

    // The next check (same replica) probes n1 again, not n2, and does not touch a2.
    await checkCluster(deps, clusterId);
    expect(probed).toEqual(["n1", "n2", "n1"]);
    expect(applied()).toEqual(["a1", "a1"]);

    answerN2(new Map([["a2", probe(false)]]));
    await first;
    expect(applied()).toEqual(["a1", "a1", "a2"]);
    expect(deps.probesInFlight.size).toBe(0);
  });
});

describe("limiter", () => {
  it("never runs more than n at once, and runs them all", async () => {
    const limit = limiter(2);
    let active = 0;
    let most = 0;
    const done = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        limit(async () => {
          most = Math.max(most, ++active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return i;
        }),
      ),
    );
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(2);
  });
});
