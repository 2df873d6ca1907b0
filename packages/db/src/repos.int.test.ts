import { randomBytes } from "node:crypto";
import { type ClusterSpec, clusterSpecSchema, type JobSpec, jobSpecSchema, SecretBox } from "@trainyard/common";
import { loadInfra } from "@trainyard/testkit";
import { Redis } from "ioredis";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectMongo, createRepos, RedisDocumentLocks, type Repos, syncIndexes } from "./index";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n-----END OPENSSH PRIVATE KEY-----";
const FP = `SHA256:${"B".repeat(43)}`;

let conn: Connection;
let repos: Repos;
let redis: Redis;

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

beforeAll(async () => {
  const infra = loadInfra();
  const suffix = randomBytes(4).toString("hex");
  conn = await connectMongo(infra.mongoUrl, `ty_db_${suffix}`);
  await syncIndexes(conn);
  redis = new Redis(infra.redisUrl);
  repos = createRepos(conn, new SecretBox(randomBytes(32).toString("base64")), new RedisDocumentLocks(redis, `ty-db-${suffix}`));
});

afterAll(async () => {
  await conn?.dropDatabase();
  await conn?.close();
  redis?.disconnect();
});

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

  it("let exactly one of many concurrent claims win", async () => {
    const { job } = await repos.jobs.create({
      team: "default",
      clusterId: new Types.ObjectId(),
      clusterName: "c",
      spec: jobSpec(),
    });
    await repos.jobs.transition(job._id, ["PENDING"], "QUEUED");
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        repos.jobs.beginAttempt(
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
    // A transition conditioned on a stale attempt id does nothing.
    expect(await repos.jobs.transition(job._id, ["LAUNCHING"], "RUNNING", { attemptId: "stale" })).toBeNull();
    await expect(repos.jobs.transition(job._id, ["SUCCEEDED"], "RUNNING")).rejects.toThrow(/illegal/);
  });

  it("keep the first stop request", async () => {
    const { job } = await repos.jobs.create({
      team: "default",
      clusterId: new Types.ObjectId(),
      clusterName: "c",
      spec: jobSpec(),
    });
    await repos.jobs.transition(job._id, ["PENDING"], "QUEUED");
    await repos.jobs.beginAttempt(
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
});
