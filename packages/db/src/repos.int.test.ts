import { type ClusterSpec, clusterSpecSchema, type JobSpec, jobSpecSchema } from "@trainyard/common";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Repos } from "./index";
import { openTestStore, type TestStore } from "./testing";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n-----END OPENSSH PRIVATE KEY-----";
const FP = `SHA256:${"B".repeat(43)}`;

let conn: Connection;
let repos: Repos;

const clusterSpec = (name: string): ClusterSpec =>
  clusterSpecSchema.parse({
    name,
    nodes: [
      { name: "n1", host: "127.0.0.2", user: "ty1", gpus: 2, workRoot: "/srv/a" },
      { name: "n2", host: "127.0.0.3", user: "ty2", gpus: 2, workRoot: "/srv/b" },
    ],
    ssh: { privateKey: PRIVATE_KEY, hostKeys: { n1: FP, n2: FP } },
  });
const jobSpec = (name = "j"): JobSpec =>
  jobSpecSchema.parse({ name, framework: "pytorch", cluster: "c", resources: { nodes: 1, gpusPerNode: 1 }, command: ["true"] });

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore("db");
  ({ conn, repos } = store);
});
afterAll(() => store?.close());

describe("credentials", () => {
  it("are sealed at rest and open to the original", async () => {
    const id = await repos.credentials.createSsh("default", { privateKey: PRIVATE_KEY, passphrase: "pw" });
    const raw = await conn.db!.collection("credentials").findOne({ _id: id });
    expect(JSON.stringify(raw)).not.toContain("secret-material");
    expect(JSON.stringify(raw)).not.toContain('"pw"');
    expect(await repos.credentials.openSsh(id)).toEqual({ privateKey: PRIVATE_KEY, passphrase: "pw" });
  });
});

describe("clusters", () => {
  it("refuse a duplicate name in a team with a 409", async () => {
    const cred = await repos.credentials.createSsh("default", { privateKey: PRIVATE_KEY });
    await repos.clusters.create("default", clusterSpec("dup"), cred);
    await expect(repos.clusters.create("default", clusterSpec("dup"), cred)).rejects.toMatchObject({ status: 409 });
  });

  it("give no GPU twice when many replicas reserve at once", async () => {
    const cred = await repos.credentials.createSsh("default", { privateKey: PRIVATE_KEY });
    const cluster = await repos.clusters.create("default", clusterSpec("race"), cred);
    // 4 GPUs in all; 10 concurrent one-GPU reservations: exactly 4 may win.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        repos.clusters.reserve(cluster._id, `job${i}`, (c) => {
          const used = new Set(c.allocations.flatMap((a) => a.nodes.map((n) => `${n.node}:${n.gpuIndices.join(",")}`)));
          for (const node of c.nodes) {
            for (let g = 0; g < node.gpus; g++) {
              if (!used.has(`${node.name}:${g}`)) {
                return {
                  ok: true,
                  allocation: { jobId: `job${i}`, attemptId: `a${i}`, nodes: [{ node: node.name, gpuIndices: [g], ports: [] }] },
                };
              }
            }
          }
          return { ok: false, reason: "full" };
        }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(4);
    const stored = await repos.clusters.byId(cluster._id);
    const slots = stored!.allocations.flatMap((a) => a.nodes.map((n) => `${n.node}:${n.gpuIndices[0]}`));
    expect(new Set(slots).size).toBe(4);
    // Reserving again for a job that holds a reservation returns the same one.
    const winner = stored!.allocations[0]!;
    const again = await repos.clusters.reserve(cluster._id, winner.jobId, () => ({ ok: false, reason: "must not be asked" }));
    expect(again.ok && again.allocation.attemptId).toBe(winner.attemptId);
    expect(await repos.clusters.release(cluster._id, winner.jobId)).toBe(true);
    expect(await repos.clusters.release(cluster._id, winner.jobId)).toBe(false);
  });

  it("keep an ended attempt's unverified nodes held under the job's own id until released as held", async () => {
    const cred = await repos.credentials.createSsh("default", { privateKey: PRIVATE_KEY });
    const cluster = await repos.clusters.create("default", clusterSpec("held"), cred);
    const jobId = new Types.ObjectId().toString();
    const gang = [
      { node: "n1", gpuIndices: [0], ports: [] },
      { node: "n2", gpuIndices: [0], ports: [] },
    ];
    await repos.clusters.reserve(cluster._id, jobId, () => ({ ok: true, allocation: { jobId, attemptId: "a1", nodes: gang } }));
    await repos.clusters.releaseExcept(cluster._id, jobId, "a1", ["n2"]);
    const held = (await repos.clusters.listHeld()).filter((h) => h.cluster._id.equals(cluster._id));
    expect(
      held.map((h) => ({ jobId: h.held.jobId, attemptId: h.held.attemptId, nodes: h.held.nodes.map((n) => n.node) })),
    ).toEqual([{ jobId, attemptId: "a1", nodes: ["n2"] }]);
    // The next attempt reserves afresh: a held allocation is never taken for the job's live reservation.
    const next = await repos.clusters.reserve(cluster._id, jobId, () => ({
      ok: true,
      allocation: { jobId, attemptId: "a2", nodes: [gang[0]!] },
    }));
    expect(next.ok && next.allocation.attemptId).toBe("a2");
    // Releasing the live reservation leaves the held one; releaseHeld frees it.
    expect(await repos.clusters.release(cluster._id, jobId)).toBe(true);
    expect((await repos.clusters.byId(cluster._id))!.allocations.map((a) => [a.attemptId, a.held])).toEqual([["a1", true]]);
    expect(await repos.clusters.releaseHeld(cluster._id, jobId, "a1")).toBe(true);
    expect((await repos.clusters.byId(cluster._id))!.allocations).toEqual([]);
  });

  it("read a held allocation stored in the old 'held:<jobId>:<attemptId>' form as held by that job", async () => {
    const cred = await repos.credentials.createSsh("default", { privateKey: PRIVATE_KEY });
    const cluster = await repos.clusters.create("default", clusterSpec("legacy-held"), cred);
    const jobId = new Types.ObjectId().toString();
    await conn.db!.collection("clusters").updateOne(
      { _id: cluster._id },
      {
        $set: {
          allocations: [
            { jobId: `held:${jobId}:a1`, attemptId: "a1", nodes: [{ node: "n1", gpuIndices: [1], ports: [] }], at: new Date() },
          ],
        },
      },
    );
    const held = (await repos.clusters.listHeld()).filter((h) => h.cluster._id.equals(cluster._id));
    expect(held.map((h) => [h.held.jobId, h.held.held])).toEqual([[jobId, true]]);
    expect(await repos.clusters.releaseHeld(cluster._id, jobId, "a1")).toBe(true);
  });
});

describe("jobs", () => {
  it("return the same job for a repeated Idempotency-Key and refuse a different spec with it", async () => {
    const base = { team: "default", clusterId: new Types.ObjectId(), clusterName: "c", idempotencyKey: "k1" };
    const a = await repos.jobs.create({ ...base, spec: jobSpec("one") });
    const b = await repos.jobs.create({ ...base, spec: jobSpec("one") });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.job._id.toString()).toBe(a.job._id.toString());
    await expect(repos.jobs.create({ ...base, spec: jobSpec("two") })).rejects.toMatchObject({ status: 409 });
  });

  it("walk a cluster's waiting jobs in queue order, page by page, and place each job in it", async () => {
    const clusterId = new Types.ObjectId();
    const priorities = [0, 2, 1, 2, 0, 1, -1, 2, 0];
    const ids: Types.ObjectId[] = [];
    for (const [i, priority] of priorities.entries()) {
      const { job } = await repos.jobs.create({
        team: "default",
        clusterId,
        clusterName: "c",
        spec: { ...jobSpec(`q${i}`), priority },
      });
      await repos.jobs.queue(job._id);
      ids.push(job._id);
    }
    // Two wait for a retry (still in the queue), one already ran (not in it).
    await conn.db!.collection("jobs").updateMany({ _id: { $in: [ids[1]!, ids[4]!] } }, { $set: { status: "RETRYING" } });
    await conn.db!.collection("jobs").updateOne({ _id: ids[7] }, { $set: { status: "SUCCEEDED" } });
    const expected = [1, 3, 2, 5, 0, 4, 8, 6].map((i) => ids[i]!.toString());

    for (const pageSize of [2, 3, 50]) {
      const walked: string[] = [];
      for await (const job of repos.jobs.waitingInQueueOrder(clusterId, pageSize)) walked.push(job._id.toString());
      expect(walked, `page size ${pageSize}`).toEqual(expected);
    }
    for (const [place, id] of expected.entries()) {
      const job = (await repos.jobs.byId(id))!;
      expect((await repos.jobs.queuePlace(job)).ahead, `job ${id}`).toBe(place);
    }
  });

  it("let exactly one of many concurrent claims win", async () => {
    const { job } = await repos.jobs.create({
      team: "default",
      clusterId: new Types.ObjectId(),
      clusterName: "c",
      spec: jobSpec(),
    });
    await repos.jobs.queue(job._id);
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        repos.jobs.markLaunching(
          job._id,
          ["QUEUED"],
          { id: `a1-${i}`, number: 1, nodes: [], masterAddr: "h", createdAt: new Date() },
          0,
        ),
      ),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    const stored = await repos.jobs.byId(job._id);
    expect(stored!.attempts).toHaveLength(1);
    expect(stored!.status).toBe("LAUNCHING");
    // A change read from a stale document (the job moved on meanwhile) does nothing.
    const winner = stored!.attempts[0]!.id;
    expect(await repos.jobs.finish(stored!, ["LAUNCHING"], "CANCELLED", { at: new Date() })).not.toBeNull();
    expect(await repos.jobs.markRunning(stored!, winner, new Date(), [])).toBeNull();
    await expect(repos.jobs.finish(stored!, ["SUCCEEDED"], "FAILED", { at: new Date() })).rejects.toThrow(/illegal/);
  });

  it("record each lifecycle change on the job and on the attempt it concerns", async () => {
    const { job } = await repos.jobs.create({
      team: "default",
      clusterId: new Types.ObjectId(),
      clusterName: "c",
      spec: jobSpec(),
    });
    const node = { name: "n1", host: "h", nodeRank: 0, gpuIndices: [0], ports: [], state: "pending" as const, missedChecks: 0 };
    const attempt = (n: number) => ({ id: `a${n}`, number: n, nodes: [node], masterAddr: "h", createdAt: new Date() });
    const queued = await repos.jobs.queue(job._id);
    expect(queued?.status).toBe("QUEUED");
    const launching = await repos.jobs.markLaunching(job._id, ["QUEUED"], attempt(1), 0);
    const t1 = new Date("2026-01-01T00:00:00Z");
    const running = await repos.jobs.markRunning(launching!, "a1", t1, [{ ...node, state: "running" }]);
    expect(running).toMatchObject({ status: "RUNNING", startedAt: t1 });
    expect(running!.attempts[0]).toMatchObject({ startedAt: t1, nodes: [{ state: "running" }] });
    await repos.jobs.requestStop(job._id, "a1", { kind: "retry", reason: "rank died", node: "n1", requestedAt: t1 });

    const t2 = new Date("2026-01-01T01:00:00Z");
    const retryAt = new Date("2026-01-01T01:00:05Z");
    const retrying = await repos.jobs.requeue(
      running!,
      { attemptId: "a1", outcome: "FAILED", reason: "rank died", failedNode: "n1", nodes: [{ ...node, state: "stopped" }] },
      { at: t2, retryAt, failure: { reason: "rank died", node: "n1", exitCode: 1 } },
    );
    expect(retrying).toMatchObject({ status: "RETRYING", retryAt, failure: { reason: "rank died", exitCode: 1 } });
    expect(retrying!.stopRequest).toBeUndefined();
    expect(retrying!.endedAt).toBeUndefined();
    expect(retrying!.attempts[0]).toMatchObject({ outcome: "FAILED", reason: "rank died", failedNode: "n1", endedAt: t2 });

    const second = await repos.jobs.markLaunching(job._id, ["RETRYING"], attempt(2), 1);
    const t3 = new Date("2026-01-01T02:00:00Z");
    const rerun = await repos.jobs.markRunning(second!, "a2", t3, [{ ...node, state: "running" }]);
    // The job's start stays its first attempt's.
    expect(rerun).toMatchObject({ startedAt: t1 });
    const t4 = new Date("2026-01-01T03:00:00Z");
    const done = await repos.jobs.finish(rerun!, ["RUNNING"], "SUCCEEDED", {
      at: t4,
      failure: null,
      attempt: { attemptId: "a2", outcome: "SUCCEEDED", nodes: [{ ...node, state: "exited", exitCode: 0 }] },
    });
    expect(done).toMatchObject({ status: "SUCCEEDED", endedAt: t4 });
    expect(done!.failure).toBeUndefined();
    expect(done!.attempts[1]).toMatchObject({ outcome: "SUCCEEDED", endedAt: t4, nodes: [{ state: "exited", exitCode: 0 }] });
    expect(done!.attempts[1]!.reason).toBeUndefined();
    // The earlier attempt keeps its reason.
    expect(done!.attempts[0]).toMatchObject({ outcome: "FAILED", reason: "rank died" });
    // Ending an attempt that is no longer current does nothing.
    expect(
      await repos.jobs.finish(rerun!, ["RUNNING"], "FAILED", { at: t4, attempt: { attemptId: "a1", outcome: "FAILED" } }),
    ).toBeNull();
  });

  it("keep the first stop request", async () => {
    const { job } = await repos.jobs.create({
      team: "default",
      clusterId: new Types.ObjectId(),
      clusterName: "c",
      spec: jobSpec(),
    });
    await repos.jobs.queue(job._id);
    await repos.jobs.markLaunching(
      job._id,
      ["QUEUED"],
      { id: "a1", number: 1, nodes: [], masterAddr: "h", createdAt: new Date() },
      0,
    );
    const first = await repos.jobs.requestStop(job._id, "a1", { kind: "fail", reason: "rank died", requestedAt: new Date() });
    const second = await repos.jobs.requestStop(job._id, "a1", { kind: "cancel", reason: "user", requestedAt: new Date() });
    expect(first?.stopRequest?.kind).toBe("fail");
    expect(second).toBeNull();
  });

  it("find the running jobs with a stop requested, however many running jobs come before them", async () => {
    const node = { name: "n1", host: "h", nodeRank: 0, gpuIndices: [0], ports: [], state: "running" as const, missedChecks: 0 };
    const running = async () => {
      const { job } = await repos.jobs.create({
        team: "sweep",
        clusterId: new Types.ObjectId(),
        clusterName: "c",
        spec: jobSpec(),
      });
      await repos.jobs.queue(job._id);
      const a = { id: `a-${job._id}`, number: 1, nodes: [node], masterAddr: "h", createdAt: new Date() };
      const launching = await repos.jobs.markLaunching(job._id, ["QUEUED"], a, 0);
      return (await repos.jobs.markRunning(launching!, a.id, new Date(), [node]))!;
    };
    const older = [await running(), await running(), await running()];
    const stopped = await running();
    await repos.jobs.requestStop(stopped._id, stopped.currentAttemptId!, {
      kind: "cancel",
      reason: "user",
      requestedAt: new Date(),
    });

    // A limit of one: a sweep of every running job would have read the oldest one only.
    const found = await repos.jobs.runningWithStopRequest(1);
    expect(found.map((j) => j._id.toString())).toEqual([stopped._id.toString()]);
    const all = (await repos.jobs.runningWithStopRequest()).map((j) => j._id.toString());
    for (const j of older) expect(all).not.toContain(j._id.toString());
  });
});
