import { randomBytes } from "node:crypto";
import { appendFileSync, chownSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { apiConfigShape, createLogger, loadConfig, QUEUE_NAMES, SecretBox } from "@trainyard/common";
import { type AttemptDoc, connectMongo, createRepos, RedisDocumentLocks, type Repos } from "@trainyard/db";
import { attemptDir, jobDir } from "@trainyard/frameworks";
import { clientPrivateKey, type HttpCallOptions, httpCall, type Infra, type Json, loadInfra } from "@trainyard/testkit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import type { Connection } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiConfig, startApi } from "./app";

const suffix = randomBytes(5).toString("hex");
const TOKEN = `test-admin-token-${randomBytes(12).toString("hex")}`;
const SECRET = randomBytes(32).toString("base64");
const BODY_LIMIT = 64 * 1024;
const FAKE_FP = `SHA256:${"A".repeat(43)}`;
const API_SECRET_VALUE = `hunter2-${suffix}`;

let infra: Infra;
let privateKey: string;
let config: ApiConfig;
let api: Awaited<ReturnType<typeof startApi>>;
let redis: Redis;
let conn: Connection;
let repos: Repos;
const nodeDirs: string[] = [];

function call(method: string, path: string, opts: HttpCallOptions = {}) {
  return httpCall(api.url, method, path, { ...opts, token: opts.token === null ? null : (opts.token ?? TOKEN) });
}

function clusterSpec(name: string, over: Record<string, unknown> = {}, ssh: Record<string, unknown> = {}) {
  const gpus = [2, 2, 1];
  return {
    name,
    nodes: infra.nodes.map((n, i) => ({
      name: n.name,
      host: n.host,
      port: n.port,
      user: n.user,
      gpus: gpus[i] ?? 1,
      workRoot: n.workRoot,
    })),
    env: infra.nodeEnv,
    ssh: {
      privateKey,
      hostKeys: Object.fromEntries(infra.nodes.map((n) => [n.name, n.hostKeyFingerprint])),
      ...ssh,
    },
    ...over,
  };
}

function jobSpec(over: Record<string, unknown> = {}) {
  return {
    name: "train-1",
    framework: "pytorch",
    cluster: "c-main",
    resources: { nodes: 2, gpusPerNode: 2 },
    command: ["python3", "train", "--epochs", "1"],
    env: { API_TOKEN: API_SECRET_VALUE, BATCH: "32" },
    files: { train: "print('hi')\n" },
    ...over,
  };
}

async function queued(name: string): Promise<Array<{ name: string; data: Record<string, unknown> }>> {
  const q = new Queue(name, { connection: redis, prefix: config.TRAINYARD_QUEUE_PREFIX });
  try {
    const jobs = await q.getJobs(["waiting", "delayed", "prioritized", "active"]);
    return jobs.map((j) => ({ name: j.name, data: j.data as Record<string, unknown> }));
  } finally {
    await q.close();
  }
}

/** Puts a job into RUNNING with one attempt on the given nodes, as the launcher would. */
async function fakeRunning(
  jobId: string,
  nodes: Array<{ name: string; host: string }>,
  attemptId = `a1-${suffix}`,
): Promise<AttemptDoc> {
  const job = await repos.jobs.byId(jobId);
  const attempt: AttemptDoc = {
    id: attemptId,
    number: 1,
    masterAddr: nodes[0]!.host,
    createdAt: new Date(),
    nodes: nodes.map((n, rank) => ({
      name: n.name,
      host: n.host,
      nodeRank: rank,
      gpuIndices: [0],
      ports: [29500, 29501, 29502, 29503],
      state: "running",
      missedChecks: 0,
    })),
  };
  const launching = await repos.jobs.markLaunching(job!._id, ["QUEUED"], attempt, 0);
  expect(launching).not.toBeNull();
  expect(await repos.jobs.markRunning(launching!, attemptId, new Date(), attempt.nodes)).not.toBeNull();
  return attempt;
}

/** Reads SSE events from a streaming response until `until` says stop or the stream ends. */
async function readEvents(
  res: Response,
  until: (events: Array<{ event: string; data: string; id?: string }>) => boolean | Promise<boolean>,
  timeoutMs = 30_000,
) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: Array<{ event: string; data: string; id?: string }> = [];
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    buf += decoder.decode(value, { stream: true });
    for (let idx = buf.indexOf("\n\n"); idx >= 0; idx = buf.indexOf("\n\n")) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      const ev: { event: string; data: string[]; id?: string } = { event: "message", data: [] };
      let isComment = true;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        isComment = false;
        const [field, ...rest] = line.split(":");
        const value = rest.join(":").replace(/^ /, "");
        if (field === "event") ev.event = value;
        else if (field === "data") ev.data.push(value);
        else if (field === "id") ev.id = value;
      }
      if (!isComment) events.push({ event: ev.event, data: ev.data.join("\n"), ...(ev.id !== undefined ? { id: ev.id } : {}) });
    }
    if (await until(events)) break;
  }
  return { events, ended, reader };
}

/** Writes an attempt's output.log as the launcher's wrapper would, owned by the node's user. */
function writeNodeLog(workRoot: string, jobId: string, attemptId: string, text: string, append = false): void {
  const dir = attemptDir(workRoot, jobId, attemptId);
  const { uid, gid } = statSync(workRoot);
  mkdirSync(dir, { recursive: true });
  for (let d = dir; d.startsWith(`${workRoot}/`); d = dirname(d)) chownSync(d, uid, gid);
  const file = `${dir}/output.log`;
  if (append) appendFileSync(file, text);
  else writeFileSync(file, text, { mode: 0o644 });
  chownSync(file, uid, gid);
  nodeDirs.push(jobDir(workRoot, jobId));
}

beforeAll(async () => {
  infra = loadInfra();
  privateKey = clientPrivateKey(infra);
  config = loadConfig(apiConfigShape, {
    REDIS_URL: infra.redisUrl,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: `ty_api_${suffix}`,
    TRAINYARD_QUEUE_PREFIX: `ty_api_${suffix}`,
    LOG_LEVEL: "silent",
    PORT: "0",
    HOST: "127.0.0.1",
    API_ADMIN_TOKEN: TOKEN,
    API_BODY_LIMIT_BYTES: String(BODY_LIMIT),
    TRAINYARD_SECRET_KEY: SECRET,
    SSH_CONNECT_TIMEOUT_MS: "5000",
    SSH_COMMAND_TIMEOUT_MS: "15000",
  });
  api = await startApi(config, createLogger("api-test", process.env.TRAINYARD_TEST_LOG_LEVEL ?? "silent"), { logPollMs: 200 });
  redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: null });
  conn = await connectMongo(infra.mongoUrl, config.MONGO_DB);
  repos = createRepos(conn, new SecretBox(SECRET), new RedisDocumentLocks(redis, config.TRAINYARD_QUEUE_PREFIX));
});

afterAll(async () => {
  await api?.close();
  for (const d of nodeDirs) rmSync(d, { recursive: true, force: true });
  if (conn) {
    await conn.dropDatabase().catch(() => undefined);
    await conn.close();
  }
  if (redis) {
    for (const name of QUEUE_NAMES) {
      const q = new Queue(name, { connection: redis, prefix: config.TRAINYARD_QUEUE_PREFIX });
      await q.obliterate({ force: true });
      await q.close();
    }
    const locks = await redis.keys(`${config.TRAINYARD_QUEUE_PREFIX}:*`);
    if (locks.length) await redis.del(...locks);
    redis.disconnect();
  }
});

describe("service basics", () => {
  it("serves /healthz, /readyz and /metrics without a token", async () => {
    expect((await call("GET", "/healthz", { token: null })).status).toBe(200);
    const ready = await call("GET", "/readyz", { token: null });
    expect(ready.status).toBe(200);
    expect(ready.json.checks).toEqual({ redis: "ok", mongo: "ok" });
    const metrics = await call("GET", "/metrics", { token: null });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("trainyard_process_");
  });

  it("401 without a token or with a wrong one", async () => {
    for (const token of [null, "wrong-token-wrong-token", `${TOKEN}x`]) {
      const res = await call("GET", "/v1/clusters", { token });
      expect(res.status).toBe(401);
      expect(res.json.error.message).toEqual(expect.any(String));
    }
    // Authentication comes before the body is even read.
    const big = await call("POST", "/v1/jobs", { token: null, raw: JSON.stringify({ pad: "x".repeat(BODY_LIMIT * 2) }) });
    expect(big.status).toBe(401);
  });

  it("sets security headers and answers unknown routes with JSON 404", async () => {
    const res = await call("GET", "/v1/nowhere");
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ error: { message: "no route for GET /v1/nowhere" } });
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-powered-by")).toBeNull();
  });

  it("can run several instances in one process", async () => {
    const second = await startApi({ ...config }, createLogger("api-test-2", "silent"));
    try {
      expect(second.port).not.toBe(api.port);
      const res = await fetch(`${second.url}/v1/jobs`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
    } finally {
      await second.close();
    }
    expect((await call("GET", "/v1/jobs")).status).toBe(200);
  });

  it("shows the queue dashboard only with the token", async () => {
    expect((await call("GET", "/admin/queues", { token: null })).status).toBe(401);
    expect((await call("GET", "/admin/queues/api/queues", { token: null })).status).toBe(401);
    const page = await call("GET", "/admin/queues");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const queues = await call("GET", "/admin/queues/api/queues");
    expect(queues.status).toBe(200);
    expect(queues.json.queues.map((q: { name: string }) => q.name).sort()).toEqual([...QUEUE_NAMES].sort());
  });
});

describe("clusters", () => {
  let mainId: string;

  it("registers a cluster (201) and never returns the private key", async () => {
    const res = await call("POST", "/v1/clusters", { body: clusterSpec("c-main") });
    expect(res.status).toBe(201);
    expect(res.text).not.toContain("PRIVATE KEY");
    expect(res.json).toMatchObject({ name: "c-main", team: "default", ssh: { trustOnFirstUse: false, hasPassphrase: false } });
    expect(res.json.ssh.privateKey).toBeUndefined();
    expect(res.json.nodes).toHaveLength(infra.nodes.length);
    mainId = res.json.id;

    for (const path of ["/v1/clusters", `/v1/clusters/${mainId}`, "/v1/clusters/c-main"]) {
      const got = await call("GET", path);
      expect(got.status).toBe(200);
      expect(got.text).not.toContain("PRIVATE KEY");
      expect(got.text).not.toContain(privateKey.split("\n")[1]!);
    }
    expect((await call("GET", "/v1/clusters")).json.items.map((c: { name: string }) => c.name)).toContain("c-main");
    expect((await call("GET", "/v1/clusters/c-main")).json.id).toBe(mainId);
  });

  it("stores the key sealed", async () => {
    const docs = await conn.db!.collection("credentials").find({}).toArray();
    expect(docs.length).toBeGreaterThan(0);
    const raw = JSON.stringify(docs);
    expect(raw).not.toContain("PRIVATE KEY");
    for (const line of privateKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")))
      expect(raw).not.toContain(line);
    for (const d of docs) expect(String(d.sealedPrivateKey)).toMatch(/^v2:[0-9a-f]{8}:/);
  });

  it("refuses a duplicate name with 409 and leaves no orphaned credential", async () => {
    const before = await conn.db!.collection("credentials").countDocuments();
    const res = await call("POST", "/v1/clusters", { body: clusterSpec("c-main") });
    expect(res.status).toBe(409);
    expect(res.json.error.message).toContain("c-main");
    expect(res.text).not.toContain("PRIVATE KEY");
    expect(await conn.db!.collection("credentials").countDocuments()).toBe(before);
  });

  it("refuses invalid cluster specs with 400 and never echoes the key", async () => {
    const bad = [
      clusterSpec("bad one"),
      clusterSpec("c-x", { nodes: [] }),
      clusterSpec("c-x", {}, { privateKey: "not a key" }),
      clusterSpec("c-x", {}, { hostKeys: {} }),
      clusterSpec("c-x", { extra: true }),
    ];
    for (const body of bad) {
      const res = await call("POST", "/v1/clusters", { body });
      expect(res.status, res.text).toBe(400);
      expect(res.text).not.toContain("PRIVATE KEY");
    }
  });

  it("404 for unknown clusters", async () => {
    expect((await call("GET", "/v1/clusters/nope")).status).toBe(404);
    expect((await call("GET", "/v1/clusters/000000000000000000000000")).status).toBe(404);
    expect((await call("POST", "/v1/clusters/nope/check")).status).toBe(404);
  });

  it("checks every node against its pinned key", async () => {
    const res = await call("POST", `/v1/clusters/${mainId}/check`);
    expect(res.status).toBe(200);
    expect(res.json.nodes).toHaveLength(infra.nodes.length);
    for (const n of infra.nodes) {
      const r = res.json.nodes.find((x: { node: string }) => x.node === n.name);
      expect(r, JSON.stringify(res.json)).toMatchObject({
        reachable: true,
        pinned: true,
        hostKeyFingerprint: n.hostKeyFingerprint,
      });
      expect(r.error).toBeUndefined();
      expect(r.pinnedNow).toBeUndefined();
    }
  });

  it("reports a wrong pinned key as a mismatch and never re-pins it", async () => {
    const n1 = infra.nodes[0]!;
    const spec = {
      ...clusterSpec("c-wrongpin", {}, { hostKeys: { [n1.name]: FAKE_FP }, trustOnFirstUse: true }),
      nodes: [{ name: n1.name, host: n1.host, port: n1.port, user: n1.user, gpus: 1, workRoot: n1.workRoot }],
    };
    expect((await call("POST", "/v1/clusters", { body: spec })).status).toBe(201);
    const res = await call("POST", "/v1/clusters/c-wrongpin/check");
    expect(res.status).toBe(200);
    const r = res.json.nodes[0];
    expect(r).toMatchObject({
      node: n1.name,
      reachable: true,
      pinned: false,
      hostKeyMismatch: true,
      hostKeyFingerprint: n1.hostKeyFingerprint,
    });
    expect(r.error).toMatch(/mismatch/);
    expect(r.pinnedNow).toBeUndefined();
    expect((await call("GET", "/v1/clusters/c-wrongpin")).json.ssh.hostKeys).toEqual({ [n1.name]: FAKE_FP });
    const alerts = await queued("alerts");
    expect(alerts.some((a) => a.data.type === "node.hostkey_mismatch" && String(a.data.message).includes("c-wrongpin"))).toBe(
      true,
    );
  });

  it("pins keys on first use when the cluster allows it", async () => {
    const spec = clusterSpec("c-tofu", {}, { hostKeys: {}, trustOnFirstUse: true });
    const created = await call("POST", "/v1/clusters", { body: spec });
    expect(created.status).toBe(201);
    expect(created.json.ssh.hostKeys).toEqual({});
    const res = await call("POST", "/v1/clusters/c-tofu/check");
    expect(res.status).toBe(200);
    for (const r of res.json.nodes) expect(r).toMatchObject({ reachable: true, pinned: true, pinnedNow: true });
    const after = await call("GET", "/v1/clusters/c-tofu");
    expect(after.json.ssh.hostKeys).toEqual(Object.fromEntries(infra.nodes.map((n) => [n.name, n.hostKeyFingerprint])));
    // A second check finds them pinned already.
    const again = await call("POST", "/v1/clusters/c-tofu/check");
    for (const r of again.json.nodes) {
      expect(r).toMatchObject({ reachable: true, pinned: true });
      expect(r.pinnedNow).toBeUndefined();
    }
  });

  it("reports an unreachable node without pinning anything", async () => {
    const spec = {
      name: "c-down",
      nodes: [
        { name: "d1", host: "127.0.0.9", port: 2222, user: "nobody", gpus: 1, workRoot: "/var/tmp/trainyard-nodes/nobody" },
      ],
      ssh: { privateKey, trustOnFirstUse: true },
    };
    expect((await call("POST", "/v1/clusters", { body: spec })).status).toBe(201);
    const res = await call("POST", "/v1/clusters/c-down/check");
    expect(res.status).toBe(200);
    expect(res.json.nodes[0]).toMatchObject({ node: "d1", reachable: false, pinned: false, error: expect.any(String) });
    expect((await call("GET", "/v1/clusters/c-down")).json.ssh.hostKeys).toEqual({});
  });
});

describe("job submission", () => {
  const invalid: Array<[string, unknown, RegExp]> = [
    ["unknown framework", jobSpec({ framework: "jax" }), /framework: unknown framework "jax"/],
    ["more nodes than the cluster", jobSpec({ resources: { nodes: 4, gpusPerNode: 1 } }), /4 nodes but the cluster has 3/],
    ["more GPUs per node than any node", jobSpec({ resources: { nodes: 1, gpusPerNode: 8 } }), /8 GPUs/],
    ["job name with a space", jobSpec({ name: "a b" }), /^name: /],
    ["job name with ../", jobSpec({ name: "../x" }), /^name: /],
    ["env key with a dash", jobSpec({ env: { "A-B": "1" } }), /env\["A-B"\]/],
    ["reserved env key", jobSpec({ env: { TRAINYARD_X: "1" } }), /env\.TRAINYARD_X: .*reserved/],
    ["nodes as a string", jobSpec({ resources: { nodes: "2", gpusPerNode: 1 } }), /resources\.nodes: /],
    ["command as a string", jobSpec({ command: "python" }), /^command: /],
    ["empty command", jobSpec({ command: [] }), /^command: /],
    ["unknown field", jobSpec({ bogus: 1 }), /"bogus"/],
    ["unknown nested field", jobSpec({ resources: { nodes: 1, gpusPerNode: 1, cpus: 4 } }), /resources: .*"cpus"/],
    ["negative nodes", jobSpec({ resources: { nodes: -1, gpusPerNode: 1 } }), /resources\.nodes: /],
    ["huge nodes", jobSpec({ resources: { nodes: 1e12, gpusPerNode: 1 } }), /resources\.nodes: /],
    ["fractional GPUs", jobSpec({ resources: { nodes: 1, gpusPerNode: 1.5 } }), /resources\.gpusPerNode: /],
    ["file path with ../", jobSpec({ files: { "../evil.sh": "x" } }), /files\["\.\.\/evil\.sh"\]/],
    ["absolute file path", jobSpec({ files: { "/etc/passwd": "x" } }), /files\["\/etc\/passwd"\]/],
    ["reserved file name", jobSpec({ files: { "launch.sh": "x" } }), /launch\.sh/],
    ["workdir with ..", jobSpec({ workdir: "/srv/../etc" }), /^workdir: /],
    ["unknown cluster", jobSpec({ cluster: "nope" }), /cluster 'nope' not found/],
    ["missing everything", {}, /name: /],
    ["an array", [], /expected object/],
  ];

  it.each(invalid)("400 for %s", async (_what, body, message) => {
    const res = await call("POST", "/v1/jobs", { body });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.message).toMatch(message);
  });

  it("400 for numbers JSON cannot or should not carry (NaN, Infinity via 1e400)", async () => {
    const nan = await call("POST", "/v1/jobs", { raw: JSON.stringify(jobSpec()).replace('"nodes":2', '"nodes":NaN') });
    expect(nan.status).toBe(400);
    expect(nan.json.error.message).toMatch(/^invalid JSON: /);
    const inf = await call("POST", "/v1/jobs", { raw: JSON.stringify(jobSpec()).replace('"nodes":2', '"nodes":1e400') });
    expect(inf.status).toBe(400);
    expect(inf.json.error.message).toMatch(/resources\.nodes: /);
    const neg = await call("POST", "/v1/jobs", {
      raw: JSON.stringify(jobSpec()).replace('"gpusPerNode":2', '"gpusPerNode":-1e400'),
    });
    expect(neg.status).toBe(400);
  });

  it("413 for a body over the limit, 415 for a non-JSON body, 400 for malformed JSON", async () => {
    const big = await call("POST", "/v1/jobs", { body: jobSpec({ files: { "big.txt": "x".repeat(BODY_LIMIT + 1) } }) });
    expect(big.status).toBe(413);
    expect(big.json.error.message).toContain(String(BODY_LIMIT));
    const text = await call("POST", "/v1/jobs", { raw: "name=x", headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(text.json.error.message).toContain("application/json");
    const bad = await call("POST", "/v1/jobs", { raw: '{"name": "x",' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/^invalid JSON: /);
    const nobody = await call("POST", "/v1/jobs");
    expect(nobody.status).toBe(400);
  });

  it("accepts a job (202), queues it and asks for a scheduling pass of its cluster, carrying only the cluster's id", async () => {
    const res = await call("POST", "/v1/jobs", { body: jobSpec() });
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ id: expect.stringMatching(/^[0-9a-f]{24}$/), status: "QUEUED" });
    const got = await call("GET", `/v1/jobs/${res.json.id}`);
    expect(got.status).toBe(200);
    // No per-job launch message: one coalesced pass request per cluster and time slot.
    expect((await queued("launch")).filter((m) => m.data.jobId === res.json.id)).toHaveLength(0);
    const passes = (await queued("schedule")).filter((m) => m.data.clusterId === got.json.clusterId);
    expect(passes.length).toBeGreaterThanOrEqual(1);
    for (const m of passes) expect(m.data).toEqual({ clusterId: got.json.clusterId });

    expect(got.json).toMatchObject({
      id: res.json.id,
      status: "QUEUED",
      name: "train-1",
      clusterName: "c-main",
      project: "default",
      team: "default",
    });
    expect(got.json.spec.files).toEqual(["train"]);
    // Secret-looking env values are not shown back.
    expect(got.json.spec.env).toEqual({ API_TOKEN: "<redacted>", BATCH: "32" });
    expect(got.text).not.toContain(API_SECRET_VALUE);
    expect((await call("GET", "/v1/jobs")).text).not.toContain(API_SECRET_VALUE);
  });

  it("orders the queue by priority, then age: GET shows queuePosition and what the job waits behind", async () => {
    const low = await call("POST", "/v1/jobs", { body: jobSpec({ name: "prio-low" }) });
    const high = await call("POST", "/v1/jobs", { body: jobSpec({ name: "prio-high", priority: 1000 }) });
    expect([low.status, high.status]).toEqual([202, 202]);
    const h = await call("GET", `/v1/jobs/${high.json.id}`);
    expect(h.json).toMatchObject({ status: "QUEUED", queuePosition: 1, spec: { priority: 1000 } });
    // No launcher runs in this file, so no pass has recorded a reason yet.
    expect(h.json.waitingReason).toBe("first in the queue: waiting for the next scheduling pass");
    const l = await call("GET", `/v1/jobs/${low.json.id}`);
    expect(l.json.spec.priority).toBe(0);
    // Every job queued on c-main before it (no launcher runs here), plus the later high-priority one.
    const listed = await call("GET", "/v1/jobs?status=QUEUED&limit=200");
    const olderOnCluster = listed.json.items.filter(
      (j: { clusterId: string; createdAt: string; id: string }) =>
        j.clusterId === l.json.clusterId && j.id !== low.json.id && j.id !== high.json.id && j.createdAt <= l.json.createdAt,
    ).length;
    expect(l.json.queuePosition).toBe(olderOnCluster + 2);
    expect(l.json.waitingReason).toBe(`behind ${olderOnCluster + 1} jobs in cluster 'c-main' queue (1 of higher priority)`);
    // List views carry no per-job queue place (it costs a query per job).
    expect(listed.json.items.find((j: { id: string }) => j.id === low.json.id).queuePosition).toBeUndefined();
    for (const id of [low.json.id, high.json.id]) expect((await call("POST", `/v1/jobs/${id}/cancel`)).status).toBe(202);
  });

  it("400 for a priority that is not an integer in -1000..1000", async () => {
    for (const priority of [1.5, 1001, -1001, "high"]) {
      const res = await call("POST", "/v1/jobs", { body: jobSpec({ name: "bad-prio", priority }) });
      expect(res.status, res.text).toBe(400);
      expect(res.json.error.message).toContain("priority");
    }
  });

  it("stores inline files whose names contain a dot (train.py, lib/util.py)", async () => {
    // Needs @trainyard/db to store spec.files without using the file names as document keys:
    // FerretDB (and MongoDB's stricter modes) refuse '.' in keys.
    const res = await call("POST", "/v1/jobs", {
      body: jobSpec({
        name: "dotted",
        command: ["python3", "train.py"],
        files: { "train.py": "print(1)\n", "lib/util.py": "X = 1\n" },
      }),
    });
    expect(res.status, res.text).toBe(202);
    expect((await call("GET", `/v1/jobs/${res.json.id}`)).json.spec.files.sort()).toEqual(["lib/util.py", "train.py"]);
  });

  it("honours Idempotency-Key: same key same job, different body 409, bad key 400", async () => {
    const key = `req-${suffix}:1`;
    const first = await call("POST", "/v1/jobs", { body: jobSpec({ name: "idem" }), headers: { "idempotency-key": key } });
    expect(first.status).toBe(202);
    const again = await call("POST", "/v1/jobs", { body: jobSpec({ name: "idem" }), headers: { "idempotency-key": key } });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ id: first.json.id, status: "QUEUED" });
    const other = await call("POST", "/v1/jobs", { body: jobSpec({ name: "idem-2" }), headers: { "idempotency-key": key } });
    expect(other.status).toBe(409);
    for (const bad of ["a b", "x".repeat(129), "a/b", "????", "$(id)"]) {
      const res = await call("POST", "/v1/jobs", { body: jobSpec(), headers: { "idempotency-key": bad } });
      expect(res.status, bad).toBe(400);
      expect(res.json.error.message).toContain("Idempotency-Key");
    }
  });

  it("lists jobs with filters and keyset (cursor) pagination", async () => {
    for (const project of ["p-a", "p-b", "p-b"]) {
      expect((await call("POST", "/v1/jobs", { body: jobSpec({ name: `l-${project}`, project }) })).status).toBe(202);
    }
    const all = await call("GET", "/v1/jobs");
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ limit: 50 });
    expect(all.json.total).toBeUndefined();
    expect(all.json.nextCursor).toBeUndefined();
    expect(all.json.items.length).toBeGreaterThanOrEqual(5);

    const pb = await call("GET", "/v1/jobs?project=p-b");
    expect(pb.json.items).toHaveLength(2);
    expect(pb.json.items.every((j: { project: string }) => j.project === "p-b")).toBe(true);

    // Page by page, limit 1: every job once, newest first, then no nextCursor.
    const first = await call("GET", "/v1/jobs?project=p-b&limit=1");
    expect(first.json).toMatchObject({ limit: 1, nextCursor: expect.any(String) });
    expect(first.json.items).toHaveLength(1);
    const second = await call("GET", `/v1/jobs?project=p-b&limit=1&cursor=${first.json.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.json.items).toHaveLength(1);
    expect(second.json.nextCursor).toBeUndefined();
    expect([first.json.items[0].id, second.json.items[0].id]).toEqual(pb.json.items.map((j: { id: string }) => j.id));
    // A page keeps its place when newer jobs arrive meanwhile (skip would shift it).
    expect((await call("POST", "/v1/jobs", { body: jobSpec({ name: "l-p-b-late", project: "p-b" }) })).status).toBe(202);
    const again = await call("GET", `/v1/jobs?project=p-b&limit=1&cursor=${first.json.nextCursor}`);
    expect(again.json.items[0].id).toBe(second.json.items[0].id);

    const q = await call("GET", "/v1/jobs?status=QUEUED");
    expect(q.json.items.every((j: { status: string }) => j.status === "QUEUED")).toBe(true);
    expect((await call("GET", "/v1/jobs?status=SUCCEEDED")).json.items).toHaveLength(0);

    for (const bad of [
      "limit=0",
      "limit=201",
      "limit=abc",
      "cursor=abc",
      "cursor=%2F%2F",
      "status=BOGUS",
      "project=a%20b",
      "limit=1.5",
    ]) {
      const res = await call("GET", `/v1/jobs?${bad}`);
      expect(res.status, bad).toBe(400);
    }
    const badCursor = await call("GET", "/v1/jobs?cursor=bm90LWEtY3Vyc29y");
    expect(badCursor.json.error.message).toContain("cursor: not a cursor returned by GET /v1/jobs");
  });

  it("404 for unknown or malformed job ids", async () => {
    for (const id of ["000000000000000000000000", "xyz", "../etc"]) {
      expect((await call("GET", `/v1/jobs/${id}`)).status).toBe(404);
      expect((await call("POST", `/v1/jobs/${id}/cancel`)).status).toBe(404);
    }
  });

  it("cancels a QUEUED job at once; a second cancel is a 409", async () => {
    const { json } = await call("POST", "/v1/jobs", { body: jobSpec({ name: "to-cancel" }) });
    const res = await call("POST", `/v1/jobs/${json.id}/cancel`);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ id: json.id, status: "CANCELLED", endedAt: expect.any(String) });
    expect((await call("GET", `/v1/jobs/${json.id}`)).json.status).toBe("CANCELLED");
    const again = await call("POST", `/v1/jobs/${json.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.json.error.message).toBe("job is already CANCELLED");
  });
});

describe("dry run", () => {
  it("returns the per-node torchrun plan with ranks and redacted secrets, and stores nothing", async () => {
    const before = (await call("GET", "/v1/jobs")).json.total;
    const launchesBefore = (await queued("launch")).length;
    const res = await call("POST", "/v1/jobs/dry-run", { body: jobSpec() });
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toContain(API_SECRET_VALUE);
    const n1 = infra.nodes[0]!;
    const n2 = infra.nodes[1]!;
    expect(res.json).toMatchObject({ valid: true, framework: "pytorch", masterAddr: n1.host, masterPort: 29500 });
    expect(res.json.nodes.map((n: { node: string; nodeRank: number }) => [n.node, n.nodeRank])).toEqual([
      [n1.name, 0],
      [n2.name, 1],
    ]);
    for (const [rank, node] of res.json.nodes.entries()) {
      expect(node.argv[0]).toBe("torchrun");
      expect(node.argv).toContain(`--node_rank=${rank}`);
      expect(node.argv).toContain("--nnodes=2");
      expect(node.argv).toContain("--nproc_per_node=2");
      expect(node.argv).toContain(`--master_addr=${n1.host}`);
      expect(node.argv.slice(-4)).toEqual(["python3", "train", "--epochs", "1"]);
      expect(node.command).toBe(node.argv.join(" "));
      expect(node.env.API_TOKEN).toBe("<redacted>");
      expect(node.env.BATCH).toBe("32");
      expect(node.env.TRAINYARD_NODE_RANK).toBe(String(rank));
      expect(node.dir).toContain("dry-run-job/dry-run-attempt");
      expect(node.files).toContain("train");
    }
    expect(res.json.text).toContain("torchrun");
    expect((await call("GET", "/v1/jobs")).json.total).toBe(before);
    expect((await queued("launch")).length).toBe(launchesBefore);
  });

  it("exports the cluster's NCCL settings, with a node's own on top, to every node of the plan", async () => {
    const spec = clusterSpec("c-nccl", { nccl: { socketIfname: "lo", ibDisable: true } });
    spec.nodes[1] = { ...spec.nodes[1]!, nccl: { socketIfname: "=lo", glooSocketIfname: "lo" } } as (typeof spec.nodes)[number];
    const created = await call("POST", "/v1/clusters", { body: spec });
    expect(created.status, created.text).toBe(201);
    const view = (await call("GET", "/v1/clusters/c-nccl")).json;
    expect(view.nccl).toEqual({ socketIfname: "lo", ibDisable: true });
    expect(view.nodes[1].nccl).toEqual({ socketIfname: "=lo", glooSocketIfname: "lo" });
    expect(view.nodes[0].nccl).toBeUndefined();

    const res = await call("POST", "/v1/jobs/dry-run", { body: jobSpec({ cluster: "c-nccl", env: { NCCL_DEBUG: "INFO" } }) });
    expect(res.status, res.text).toBe(200);
    const [a, b] = res.json.nodes;
    expect(a.env).toMatchObject({ NCCL_SOCKET_IFNAME: "lo", GLOO_SOCKET_IFNAME: "lo", NCCL_IB_DISABLE: "1", NCCL_DEBUG: "INFO" });
    expect(b.env).toMatchObject({ NCCL_SOCKET_IFNAME: "=lo", GLOO_SOCKET_IFNAME: "lo", NCCL_IB_DISABLE: "1" });

    const bad = await call("POST", "/v1/clusters", { body: clusterSpec("c-nccl-bad", { nccl: { socketIfname: "lo;id" } }) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("socketIfname");
  });

  it("refuses what it cannot run with 400", async () => {
    expect((await call("POST", "/v1/jobs/dry-run", { body: jobSpec({ resources: { nodes: 3, gpusPerNode: 2 } }) })).status).toBe(
      400,
    );
    expect((await call("POST", "/v1/jobs/dry-run", { body: jobSpec({ framework: "jax" }) })).status).toBe(400);
  });
});

describe("running jobs: cancel and logs", () => {
  let jobId: string;
  let attempt: AttemptDoc;

  it("404 for the log of a job that has no attempt yet", async () => {
    const { json } = await call("POST", "/v1/jobs", { body: jobSpec({ name: "no-attempt" }) });
    const res = await call("GET", `/v1/jobs/${json.id}/logs`);
    expect(res.status).toBe(404);
    expect(res.json.error.message).toContain("no attempt");
  });

  it("reads a node's log over SSH (plain text with the next offset)", async () => {
    const { json } = await call("POST", "/v1/jobs", { body: jobSpec({ name: "running" }) });
    jobId = json.id;
    const [n1, n2] = infra.nodes;
    attempt = await fakeRunning(jobId, [n1!, n2!]);
    writeNodeLog(n1!.workRoot, jobId, attempt.id, "line one\nline two\n");

    const res = await call("GET", `/v1/jobs/${jobId}/logs`);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(res.text).toBe("line one\nline two\n");
    expect(res.headers.get("x-log-next-offset")).toBe("18");

    const tail = await call("GET", `/v1/jobs/${jobId}/logs?from=9&maxBytes=4`);
    expect(tail.text).toBe("line");
    expect(tail.headers.get("x-log-next-offset")).toBe("13");

    const other = await call("GET", `/v1/jobs/${jobId}/logs?node=${n2!.name}`);
    expect(other.status).toBe(200);
    expect(other.text).toBe("");
    expect(other.headers.get("x-log-next-offset")).toBe("0");

    expect((await call("GET", `/v1/jobs/${jobId}/logs?node=${infra.nodes[2]!.name}`)).status).toBe(404);
    expect((await call("GET", `/v1/jobs/${jobId}/logs?maxBytes=0`)).status).toBe(400);
    expect((await call("GET", `/v1/jobs/${jobId}/logs?follow=maybe`)).status).toBe(400);
  });

  it("cancels a RUNNING job by recording a stop request and telling the launcher", async () => {
    const res = await call("POST", `/v1/jobs/${jobId}/cancel`);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: "RUNNING", stopRequest: { kind: "cancel", reason: "cancelled by user" } });
    const control = await queued("control");
    expect(control.map((c) => c.data)).toContainEqual({ jobId, attemptId: attempt.id });
  });

  it("follows the log as Server-Sent Events until the job ends", async () => {
    const ctl = new AbortController();
    const res = await fetch(`${api.url}/v1/jobs/${jobId}/logs?follow=true`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: ctl.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const n1 = infra.nodes[0]!;
    let appended = false;
    let finished = false;
    const { events, ended } = await readEvents(res, async (evs) => {
      const text = evs
        .filter((e) => e.event === "log")
        .map((e) => e.data)
        .join("\n");
      if (!appended && text.includes("line two")) {
        appended = true;
        writeNodeLog(n1.workRoot, jobId, attempt.id, "line three\n", true);
      }
      if (!finished && text.includes("line three")) {
        finished = true;
        // The launcher finishing the cancel.
        const running = await repos.jobs.byId(jobId);
        await repos.jobs.finish(running!, ["RUNNING"], "CANCELLED", {
          at: new Date(),
          attempt: { attemptId: attempt.id, outcome: "CANCELLED" },
        });
      }
      return evs.some((e) => e.event === "end");
    });
    ctl.abort();
    const logs = events.filter((e) => e.event === "log");
    expect(logs[0]).toEqual({ event: "log", data: "line one\nline two\n", id: "18" });
    expect(logs.map((e) => e.data).join("")).toContain("line three\n");
    expect(logs[logs.length - 1]!.id).toBe("29");
    expect(events[events.length - 1]).toEqual({ event: "end", data: "CANCELLED" });
    expect(ended || events.some((e) => e.event === "end")).toBe(true);
  });

  it("502 (JSON) when the node cannot be reached; SSE reports it as an error event", async () => {
    const { json } = await call("POST", "/v1/jobs", {
      body: jobSpec({ name: "down", cluster: "c-down", resources: { nodes: 1, gpusPerNode: 1 } }),
    });
    await fakeRunning(json.id, [{ name: "d1", host: "127.0.0.9" }], `a1-down-${suffix}`);
    const res = await call("GET", `/v1/jobs/${json.id}/logs`);
    expect(res.status).toBe(502);
    expect(res.json.error.message).toContain("d1");

    const ctl = new AbortController();
    const sse = await fetch(`${api.url}/v1/jobs/${json.id}/logs?follow=true`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: ctl.signal,
    });
    expect(sse.status).toBe(200);
    const { events, reader } = await readEvents(sse, (evs) => evs.some((e) => e.event === "error"));
    expect(events.find((e) => e.event === "error")!.data).toContain("d1");
    // The client leaves; the API must stop polling (checked indirectly: close() below does not hang).
    await reader.cancel().catch(() => undefined);
    ctl.abort();
  });
});
