import { randomBytes } from "node:crypto";
import { apiConfigShape, createLogger, loadConfig } from "@trainyard/common";
import { connectMongo } from "@trainyard/db";
import { clientPrivateKey, httpCall, type Infra, type Json, loadInfra } from "@trainyard/testkit";
import { Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiConfig, type ApiRoute, apiRoutes, startApi } from "./app";
import { expressPath, pathParams } from "./http/route-table";

const suffix = randomBytes(4).toString("hex");
const BOOTSTRAP = `bootstrap-${randomBytes(16).toString("hex")}`;

let infra: Infra;
let config: ApiConfig;
let api: Awaited<ReturnType<typeof startApi>>;

function call(token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return httpCall(api.url, method, path, { token, headers, ...(body !== undefined ? { body } : {}) });
}

function clusterSpec(name: string, over: Record<string, unknown> = {}) {
  return {
    name,
    nodes: infra.nodes
      .slice(0, 2)
      .map((n) => ({ name: n.name, host: n.host, port: n.port, user: n.user, gpus: 2, workRoot: n.workRoot })),
    env: infra.nodeEnv,
    ssh: {
      privateKey: clientPrivateKey(infra),
      hostKeys: Object.fromEntries(infra.nodes.slice(0, 2).map((n) => [n.name, n.hostKeyFingerprint])),
    },
    ...over,
  };
}
const jobSpec = (cluster: string, name = "j1") => ({
  name,
  framework: "pytorch",
  cluster,
  resources: { nodes: 1, gpusPerNode: 1 },
  command: ["python3", "-c", "print(1)"],
});
const budgetSpec = (name: string) => ({ name, scope: { type: "team" }, limitUsd: 10 });
const channelSpec = (name: string) => ({ type: "webhook", name, url: "http://127.0.0.1:9/hook", events: ["job.failed"] });
const storageSpec = (name: string) => ({
  name,
  credentials: {
    backend: "s3",
    bucket: "b-bucket",
    endpoint: "http://127.0.0.1:9",
    accessKeyId: "AKIAB",
    secretAccessKey: "b-secret-value",
  },
});

interface Team {
  name: string;
  admin: string;
  member: string;
  viewer: string;
}

async function makeTeam(name: string): Promise<Team> {
  const created = await call(BOOTSTRAP, "POST", "/v1/teams", { name });
  expect(created.status, created.text).toBe(201);
  const key = async (role: string) => {
    const res = await call(BOOTSTRAP, "POST", `/v1/teams/${name}/keys`, { name: `${role}-key`, role });
    expect(res.status, res.text).toBe(201);
    return res.json.key as string;
  };
  return { name, admin: await key("admin"), member: await key("member"), viewer: await key("viewer") };
}

/** One object of every kind a team-scoped route can name, created in the keys' team. */
async function teamObjects(admin: string, member: string, clusterName: string): Promise<Record<string, string>> {
  const cluster = await call(admin, "POST", "/v1/clusters", clusterSpec(clusterName));
  expect(cluster.status, cluster.text).toBe(201);
  const job = await call(member, "POST", "/v1/jobs", jobSpec(clusterName));
  expect(job.status, job.text).toBe(202);
  const budget = await call(admin, "POST", "/v1/budgets", budgetSpec(`${clusterName}-budget`));
  expect(budget.status, budget.text).toBe(201);
  const channel = await call(admin, "POST", "/v1/alert-channels", channelSpec(`${clusterName}-hook`));
  expect(channel.status, channel.text).toBe(201);
  const storage = await call(admin, "POST", "/v1/storage-credentials", storageSpec(`${clusterName}-store`));
  expect(storage.status, storage.text).toBe(201);
  return {
    clusterId: cluster.json.id,
    jobId: job.json.id,
    budgetId: budget.json.id,
    channelId: channel.json.id,
    storageName: `${clusterName}-store`,
  };
}

const SECRET_KEY = randomBytes(32).toString("base64");
function configEnv(): Record<string, string> {
  return {
    REDIS_URL: infra.redisUrl,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: `ty_access_${suffix}`,
    TRAINYARD_QUEUE_PREFIX: `tyaccess-${suffix}`,
    TRAINYARD_SECRET_KEY: SECRET_KEY,
    API_ADMIN_TOKEN: BOOTSTRAP,
    ALERT_ALLOWED_HOSTS: "127.0.0.1",
    PORT: "0",
    HOST: "127.0.0.1",
  };
}

let a: Team;
let b: Team;
/** Team B's objects, by the path parameters that name them. */
const bObjects: Record<string, string> = {};

beforeAll(async () => {
  infra = loadInfra();
  config = loadConfig(apiConfigShape, configEnv());
  api = await startApi(config, createLogger("api", "silent"), { logPollMs: 50 });
  a = await makeTeam(`team-a-${suffix}`);
  b = await makeTeam(`team-b-${suffix}`);

  Object.assign(bObjects, await teamObjects(b.admin, b.member, "c-b"));
}, 60_000);

afterAll(async () => {
  await api?.close();
  const conn = await connectMongo(config.MONGO_URL, config.MONGO_DB);
  await conn.dropDatabase();
  await conn.close();
});

describe("API keys", () => {
  it("are shown once, stored only as a hash, listed without the secret", async () => {
    const issued = await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "once", role: "viewer" });
    expect(issued.json.key).toMatch(/^tyk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(issued.json.key.startsWith(issued.json.prefix)).toBe(true);
    const list = await call(BOOTSTRAP, "GET", `/v1/teams/${a.name}/keys`);
    expect(list.json.items.map((k: Json) => k.id)).toContain(issued.json.id);
    expect(list.text).not.toContain(issued.json.key.slice(17));
    const conn = await connectMongo(config.MONGO_URL, config.MONGO_DB);
    try {
      const raw = JSON.stringify(await conn.db!.collection("api_keys").find({}).toArray());
      expect(raw).not.toContain(issued.json.key.slice(17));
    } finally {
      await conn.close();
    }
    const me = await call(issued.json.key, "GET", "/v1/me");
    expect(me.json).toMatchObject({ team: a.name, role: "viewer", keyId: issued.json.id });
  });

  it("401 for revoked, expired, malformed, unknown and missing keys", async () => {
    const issued = await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "short", role: "member" });
    expect((await call(issued.json.key, "GET", "/v1/jobs")).status).toBe(200);
    expect((await call(BOOTSTRAP, "DELETE", `/v1/teams/${a.name}/keys/${issued.json.id}`)).status).toBe(204);
    const revoked = await call(issued.json.key, "GET", "/v1/jobs");
    expect([revoked.status, revoked.json.error.message]).toEqual([401, "API key revoked"]);

    const brief = await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, {
      name: "brief",
      role: "member",
      expiresInDays: 0.00002,
    });
    expect(brief.status).toBe(201);
    await new Promise((r) => setTimeout(r, 2500));
    const expired = await call(brief.json.key, "GET", "/v1/jobs");
    expect([expired.status, expired.json.error.message]).toEqual([401, "API key expired"]);

    for (const [token, message] of [
      [null, /missing bearer token/],
      ["not-a-key", /malformed API key/],
      [`tyk_000000000000_${"A".repeat(43)}`, /invalid API key/],
      [`${a.member.slice(0, -1)}${a.member.endsWith("x") ? "y" : "x"}`, /invalid API key/],
    ] as const) {
      const res = await call(token, "GET", "/v1/jobs");
      expect(res.status, String(token)).toBe(401);
      expect(res.json.error.message).toMatch(message);
      expect(res.text).not.toContain('"items"');
    }
  });

  it("refuses bad key requests with 400/404, never 5xx", async () => {
    expect((await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "x", role: "root" })).status).toBe(400);
    expect(
      (await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "x", role: "admin", expiresInDays: -1 })).status,
    ).toBe(400);
    expect((await call(BOOTSTRAP, "POST", "/v1/teams/no-such-team/keys", { name: "x", role: "admin" })).status).toBe(404);
    expect((await call(BOOTSTRAP, "DELETE", `/v1/teams/${a.name}/keys/ffffffffffff`)).status).toBe(404);
    // A's key id, revoked through team B's path: 404 and the key keeps working.
    const me = await call(a.viewer, "GET", "/v1/me");
    expect((await call(BOOTSTRAP, "DELETE", `/v1/teams/${b.name}/keys/${me.json.keyId}`)).status).toBe(404);
    expect((await call(a.viewer, "GET", "/v1/me")).status).toBe(200);
    expect((await call(BOOTSTRAP, "POST", "/v1/teams", { name: a.name })).status).toBe(409);
  });
});

describe("roles", () => {
  it("viewer reads only; member runs jobs; admin changes the team's setup", async () => {
    const cluster = await call(a.admin, "POST", "/v1/clusters", clusterSpec("c-a"));
    expect(cluster.status, cluster.text).toBe(201);
    expect((await call(a.viewer, "GET", "/v1/clusters/c-a")).status).toBe(200);
    const viewerSubmit = await call(a.viewer, "POST", "/v1/jobs", jobSpec("c-a"));
    expect(viewerSubmit.status).toBe(403);
    expect(viewerSubmit.json.error.message).toMatch(/needs the 'member' role/);
    const job = await call(a.member, "POST", "/v1/jobs", jobSpec("c-a", "by-member"));
    expect(job.status).toBe(202);
    expect((await call(a.viewer, "POST", `/v1/jobs/${job.json.id}/cancel`)).status).toBe(403);
    expect((await call(a.member, "POST", `/v1/jobs/${job.json.id}/cancel`)).status).toBe(202);
    for (const [method, path, body] of [
      ["POST", "/v1/budgets", budgetSpec("m")],
      ["POST", "/v1/alert-channels", channelSpec("m")],
      ["POST", "/v1/clusters", clusterSpec("c-m")],
      ["GET", "/v1/pricing", undefined],
      ["GET", "/v1/teams", undefined],
      ["GET", "/v1/audit", undefined],
      ["GET", "/admin/queues", undefined],
    ] as const) {
      expect((await call(a.member, method, path, body)).status, `${method} ${path}`).toBe(403);
    }
    expect((await call(a.member, "GET", "/v1/budgets")).status).toBe(200);
    expect((await call(a.admin, "GET", "/v1/audit")).status).toBe(200);
  });

  it("fields a caller may not set are rejected, never stored", async () => {
    for (const extra of [{ team: b.name }, { status: "SUCCEEDED" }, { cost: { usd: 0 } }, { attempts: [] }]) {
      const res = await call(a.member, "POST", "/v1/jobs", { ...jobSpec("c-a", "sneaky"), ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json.error.message).toMatch(/Unrecognized key/);
    }
    const res = await call(a.admin, "POST", "/v1/clusters", { ...clusterSpec("c-sneaky"), team: b.name });
    expect(res.status).toBe(400);
  });
});

describe("tenant isolation", () => {
  /** The objects each team-scoped path parameter names, for team B. */
  function bParams(route: ApiRoute): Record<string, string> | undefined {
    const p = route.path;
    if (p.startsWith("/v1/jobs/{id}/checkpoints/{cid}")) return { id: bObjects.jobId!, cid: new Types.ObjectId().toString() };
    if (p.startsWith("/v1/jobs/{id}")) return { id: bObjects.jobId! };
    if (p.startsWith("/v1/clusters/{id}")) return { id: bObjects.clusterId! };
    if (p.startsWith("/v1/budgets/{id}")) return { id: bObjects.budgetId! };
    if (p.startsWith("/v1/alert-channels/{id}")) return { id: bObjects.channelId! };
    if (p.startsWith("/v1/storage-credentials/{name}")) return { name: bObjects.storageName! };
    return undefined;
  }
  /** A body that passes validation, so the answer is about ownership, not input. */
  const validBodies: Record<string, unknown> = {
    updateBudget: budgetSpec("renamed"),
    updateAlertChannel: channelSpec("renamed"),
    shareCluster: { teams: [] },
    addClusterNode: { name: "n9", host: "127.0.0.9", user: "ty9", gpus: 1, workRoot: "/srv/n9" },
    repinHostKey: { fingerprint: `SHA256:${"C".repeat(43)}` },
  };

  const routes = apiRoutes({} as never);
  const teamRoutesWithParams = routes.filter((r) => r.scope === "team" && pathParams(r.path).length > 0);

  it("the route table is what the server answers (nothing mounted outside it)", async () => {
    expect(teamRoutesWithParams.length).toBeGreaterThanOrEqual(14);
    for (const r of routes) expect(expressPath(r.path)).not.toContain("{");
    const doc = (await call(null, "GET", "/openapi.json")).json;
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
  });

  it.each(teamRoutesWithParams.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))(
    "team A's keys get 404 and no data from %s with team B's objects",
    async (_name, route) => {
      const params = bParams(route);
      expect(params, `no team-B fixture for ${route.path}: add one so the route is covered`).toBeDefined();
      const path = route.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_m, k: string) => encodeURIComponent(params![k]!));
      for (const key of [a.admin, a.member, a.viewer]) {
        const res = await call(
          key,
          route.method.toUpperCase(),
          path,
          validBodies[route.operationId] ?? (route.body ? {} : undefined),
        );
        // A role below the route's gets its 403 before any lookup; every other answer is a 404.
        const expected = key === a.admin || (key === a.member && route.role !== "admin") || route.role === "viewer" ? 404 : 403;
        expect(res.status, `${route.method} ${path}: ${res.text}`).toBe(expected);
        // Nothing but an error message: no field of B's object, not even its team's name.
        expect(Object.keys(res.json)).toEqual(["error"]);
        expect(Object.keys(res.json.error)).toEqual(["message"]);
        if (expected === 404) expect(res.json.error.message).toMatch(/not found/);
        expect(res.text).not.toContain(b.name);
      }
    },
  );

  it("lists never show another team's objects; jobs cannot target another team's cluster", async () => {
    for (const route of routes.filter((r) => r.scope === "team" && r.method === "get" && pathParams(r.path).length === 0)) {
      const res = await call(a.admin, "GET", route.path);
      expect(res.status, route.path).toBe(200);
      for (const v of Object.values(bObjects)) expect(res.text, route.path).not.toContain(v);
    }
    // ...while team B reaches its own objects by the same paths.
    for (const path of [
      `/v1/jobs/${bObjects.jobId}`,
      `/v1/clusters/${bObjects.clusterId}`,
      `/v1/budgets/${bObjects.budgetId}`,
      `/v1/alert-channels/${bObjects.channelId}`,
    ]) {
      expect((await call(b.viewer, "GET", path)).status, path).toBe(200);
    }
    const res = await call(a.member, "POST", "/v1/jobs", jobSpec(bObjects.clusterId!));
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/cluster .* not found/);
  });

  it("a cluster shared with a team is visible and usable by it, changeable only by its owner", async () => {
    const shared = await call(b.admin, "POST", "/v1/clusters", clusterSpec("c-shared", { sharedWith: [a.name] }));
    expect(shared.status, shared.text).toBe(201);
    expect(shared.json.sharedWith).toEqual([a.name]);
    const seen = await call(a.viewer, "GET", `/v1/clusters/${shared.json.id}`);
    expect(seen.status).toBe(200);
    expect(seen.json.team).toBe(b.name);
    expect(seen.json.sharedWith).toBeUndefined();
    const job = await call(a.member, "POST", "/v1/jobs", jobSpec("c-shared", "on-shared"));
    expect(job.status, job.text).toBe(202);
    expect((await call(b.viewer, "GET", `/v1/jobs/${job.json.id}`)).status).toBe(404);
    expect((await call(a.admin, "POST", `/v1/clusters/${shared.json.id}/check`)).status).toBe(403);
    expect((await call(a.admin, "PUT", `/v1/clusters/${shared.json.id}/sharing`, { teams: [] })).status).toBe(403);
    // Unshared: gone for A again.
    expect((await call(b.admin, "PUT", `/v1/clusters/${shared.json.id}/sharing`, { teams: [] })).status).toBe(200);
    expect((await call(a.viewer, "GET", `/v1/clusters/${shared.json.id}`)).status).toBe(404);
    expect((await call(b.admin, "PUT", `/v1/clusters/${shared.json.id}/sharing`, { teams: ["no-such-team"] })).status).toBe(400);
  });
});

describe("platform operators and team admins", () => {
  type Caller = "viewer" | "member" | "admin" | "operator";
  const CALLERS: readonly Caller[] = ["viewer", "member", "admin", "operator"];
  /** What a request of the matrix may use: the caller's own team, its objects, and fresh ones to destroy. */
  interface Own {
    team: string;
    objects: Record<string, string>;
    /** A new object for a route that destroys one, so each caller has its own. */
    fresh(kind: "budget" | "channel" | "storage" | "job" | "key"): Promise<string>;
  }
  type Req = { path: string; body?: unknown };
  const n = () => randomBytes(3).toString("hex");

  /**
   * Every mounted route: the request each caller makes on its own team, and the status each of
   * [viewer, member, admin, operator] gets. The operator acts as the platform team's member would,
   * plus the platform routes. A route missing here fails the test below.
   */
  const MATRIX: Record<string, { req: (o: Own) => Req | Promise<Req>; expect: [number, number, number, number] }> = {
    whoAmI: { req: () => ({ path: "/v1/me" }), expect: [200, 200, 200, 200] },
    createTeam: { req: () => ({ path: "/v1/teams", body: { name: `t-${n()}` } }), expect: [403, 403, 403, 201] },
    listTeams: { req: () => ({ path: "/v1/teams" }), expect: [403, 403, 403, 200] },
    getTeam: { req: (o) => ({ path: `/v1/teams/${o.team}` }), expect: [200, 200, 200, 200] },
    setTeamQuota: { req: (o) => ({ path: `/v1/teams/${o.team}/quota`, body: { maxGpus: 64 } }), expect: [403, 403, 403, 200] },
    setTeamDefaultPriority: {
      req: (o) => ({ path: `/v1/teams/${o.team}/default-priority`, body: { priority: 1 } }),
      expect: [403, 403, 200, 200],
    },
    issueApiKey: {
      req: (o) => ({ path: `/v1/teams/${o.team}/keys`, body: { name: `k-${n()}`, role: "viewer" } }),
      expect: [403, 403, 201, 201],
    },
    listApiKeys: { req: (o) => ({ path: `/v1/teams/${o.team}/keys` }), expect: [403, 403, 200, 200] },
    revokeApiKey: {
      req: async (o) => ({ path: `/v1/teams/${o.team}/keys/${await o.fresh("key")}` }),
      expect: [403, 403, 204, 204],
    },
    listAuditEvents: { req: () => ({ path: "/v1/audit" }), expect: [403, 403, 200, 200] },
    registerCluster: { req: () => ({ path: "/v1/clusters", body: clusterSpec(`c-${n()}`) }), expect: [403, 403, 201, 201] },
    listClusters: { req: () => ({ path: "/v1/clusters" }), expect: [200, 200, 200, 200] },
    getCluster: { req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}` }), expect: [200, 200, 200, 200] },
    checkCluster: { req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/check` }), expect: [403, 403, 200, 200] },
    addClusterNode: {
      req: (o) => {
        const n3 = infra.nodes[2]!;
        const node = { name: "n3", host: n3.host, port: n3.port, user: n3.user, gpus: 2, workRoot: n3.workRoot };
        return { path: `/v1/clusters/${o.objects.clusterId}/nodes`, body: { ...node, hostKey: n3.hostKeyFingerprint } };
      },
      expect: [403, 403, 201, 201],
    },
    removeClusterNode: { req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/nodes/n3` }), expect: [403, 403, 200, 200] },
    repinHostKey: {
      req: (o) => ({
        path: `/v1/clusters/${o.objects.clusterId}/nodes/n1/host-key`,
        body: { fingerprint: infra.nodes[0]!.hostKeyFingerprint },
      }),
      expect: [403, 403, 200, 200],
    },
    acknowledgeNodeGpus: {
      // Allowed callers reach the use case, which finds no mismatch on a node never checked.
      req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/nodes/n1/acknowledge-gpus` }),
      expect: [403, 403, 409, 409],
    },
    cordonNode: {
      req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/nodes/n2/cordon`, body: { reason: "matrix" } }),
      expect: [403, 403, 200, 200],
    },
    drainNode: {
      req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/nodes/n2/drain`, body: {} }),
      expect: [403, 403, 200, 200],
    },
    uncordonNode: {
      req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/nodes/n2/uncordon` }),
      expect: [403, 403, 200, 200],
    },
    shareCluster: {
      req: (o) => ({ path: `/v1/clusters/${o.objects.clusterId}/sharing`, body: { teams: [] } }),
      expect: [403, 403, 200, 200],
    },
    submitJob: {
      req: (o) => ({ path: "/v1/jobs", body: jobSpec(o.objects.clusterName!, `j-${n()}`) }),
      expect: [403, 202, 202, 202],
    },
    dryRunJob: {
      req: (o) => ({ path: "/v1/jobs/dry-run", body: jobSpec(o.objects.clusterName!) }),
      expect: [403, 200, 200, 200],
    },
    listJobs: { req: () => ({ path: "/v1/jobs" }), expect: [200, 200, 200, 200] },
    getJob: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}` }), expect: [200, 200, 200, 200] },
    cancelJob: { req: async (o) => ({ path: `/v1/jobs/${await o.fresh("job")}/cancel` }), expect: [403, 202, 202, 202] },
    // No launcher runs here: the job has no attempt, so no log and no checkpoint (404 for all who may look).
    getJobLogs: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/logs` }), expect: [404, 404, 404, 404] },
    getJobMetrics: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/metrics` }), expect: [200, 200, 200, 200] },
    getJobProgress: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/progress` }), expect: [200, 200, 200, 200] },
    resubmitJob: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/resubmit` }), expect: [403, 202, 202, 202] },
    listCheckpoints: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/checkpoints` }), expect: [200, 200, 200, 200] },
    latestCheckpoint: { req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/checkpoints/latest` }), expect: [404, 404, 404, 404] },
    deleteCheckpoint: {
      req: (o) => ({ path: `/v1/jobs/${o.objects.jobId}/checkpoints/${new Types.ObjectId()}` }),
      expect: [403, 404, 404, 404],
    },
    registerStorageCredentials: {
      req: () => ({ path: "/v1/storage-credentials", body: storageSpec(`s-${n()}`) }),
      expect: [403, 403, 201, 201],
    },
    listStorageCredentials: { req: () => ({ path: "/v1/storage-credentials" }), expect: [200, 200, 200, 200] },
    deleteStorageCredentials: {
      req: async (o) => ({ path: `/v1/storage-credentials/${await o.fresh("storage")}` }),
      expect: [403, 403, 204, 204],
    },
    getPricing: { req: () => ({ path: "/v1/pricing" }), expect: [403, 403, 403, 200] },
    putPricing: { req: () => ({ path: "/v1/pricing", body: { gpuTypes: { cpu: 0.5 } } }), expect: [403, 403, 403, 200] },
    costReport: { req: () => ({ path: "/v1/costs" }), expect: [200, 200, 200, 200] },
    createBudget: { req: () => ({ path: "/v1/budgets", body: budgetSpec(`b-${n()}`) }), expect: [403, 403, 201, 201] },
    listBudgets: { req: () => ({ path: "/v1/budgets" }), expect: [200, 200, 200, 200] },
    getBudget: { req: (o) => ({ path: `/v1/budgets/${o.objects.budgetId}` }), expect: [200, 200, 200, 200] },
    updateBudget: {
      req: async (o) => ({ path: `/v1/budgets/${await o.fresh("budget")}`, body: budgetSpec(`b-${n()}`) }),
      expect: [403, 403, 200, 200],
    },
    deleteBudget: { req: async (o) => ({ path: `/v1/budgets/${await o.fresh("budget")}` }), expect: [403, 403, 204, 204] },
    createAlertChannel: {
      req: () => ({ path: "/v1/alert-channels", body: channelSpec(`h-${n()}`) }),
      expect: [403, 403, 201, 201],
    },
    listAlertChannels: { req: () => ({ path: "/v1/alert-channels" }), expect: [200, 200, 200, 200] },
    getAlertChannel: { req: (o) => ({ path: `/v1/alert-channels/${o.objects.channelId}` }), expect: [200, 200, 200, 200] },
    updateAlertChannel: {
      req: async (o) => ({ path: `/v1/alert-channels/${await o.fresh("channel")}`, body: channelSpec(`h-${n()}`) }),
      expect: [403, 403, 200, 200],
    },
    deleteAlertChannel: {
      req: async (o) => ({ path: `/v1/alert-channels/${await o.fresh("channel")}` }),
      expect: [403, 403, 204, 204],
    },
    listAlertDeliveries: { req: () => ({ path: "/v1/alerts" }), expect: [200, 200, 200, 200] },
  };

  const routes = apiRoutes({} as never);
  const PLATFORM_TEAM = "default";
  let own: Record<Caller, { key: string; own: Own }>;

  beforeAll(async () => {
    /** Fresh objects are made by the team's strongest key, so the caller under test only destroys them. */
    const ownOf = (team: string, admin: string, member: string, objects: Record<string, string>): Own => ({
      team,
      objects,
      async fresh(kind) {
        const make: Record<typeof kind, () => Promise<string>> = {
          budget: async () => (await call(admin, "POST", "/v1/budgets", budgetSpec(`fb-${n()}`))).json.id,
          channel: async () => (await call(admin, "POST", "/v1/alert-channels", channelSpec(`fh-${n()}`))).json.id,
          storage: async () => {
            const name = `fs-${n()}`;
            expect((await call(admin, "POST", "/v1/storage-credentials", storageSpec(name))).status).toBe(201);
            return name;
          },
          job: async () => (await call(member, "POST", "/v1/jobs", jobSpec(objects.clusterName!, `fj-${n()}`))).json.id,
          key: async () =>
            (await call(BOOTSTRAP, "POST", `/v1/teams/${team}/keys`, { name: `fk-${n()}`, role: "viewer" })).json.id,
        };
        const id = await make[kind]();
        expect(id, `fresh ${kind}`).toEqual(expect.any(String));
        return id;
      },
    });
    const aObjects = { ...(await teamObjects(a.admin, a.member, "c-own")), clusterName: "c-own" };
    const pObjects = { ...(await teamObjects(BOOTSTRAP, BOOTSTRAP, "c-platform")), clusterName: "c-platform" };
    const aOwn = ownOf(a.name, a.admin, a.member, aObjects);
    own = {
      viewer: { key: a.viewer, own: aOwn },
      member: { key: a.member, own: aOwn },
      admin: { key: a.admin, own: aOwn },
      operator: { key: BOOTSTRAP, own: ownOf(PLATFORM_TEAM, BOOTSTRAP, BOOTSTRAP, pObjects) },
    };
  }, 60_000);

  it("the matrix names every mounted route, and only those", () => {
    expect(Object.keys(MATRIX).sort()).toEqual(routes.map((r) => r.operationId).sort());
  });

  it.each(routes.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))(
    "%s answers each caller as the matrix says",
    async (_name, route) => {
      const row = MATRIX[route.operationId];
      expect(row, `${route.operationId} is mounted but missing from the matrix: add its row`).toBeDefined();
      for (const [i, caller] of CALLERS.entries()) {
        const { key, own: o } = own[caller];
        const req = await row!.req(o);
        const res = await call(key, route.method.toUpperCase(), req.path, req.body ?? (route.body ? {} : undefined));
        expect(res.status, `${caller}: ${route.method} ${req.path}: ${res.text.slice(0, 300)}`).toBe(row!.expect[i]);
        if (res.status >= 400) expect(res.json.error.message, caller).toEqual(expect.any(String));
        if (res.status === 403) expect(res.json.error.message).toMatch(/needs (a platform operator key|the '\w+' role)/);
      }
    },
  );

  it("the queue dashboard is for operators only", async () => {
    for (const key of [a.viewer, a.member, a.admin]) {
      const res = await call(key, "GET", "/admin/queues");
      expect(res.status).toBe(403);
      expect(res.json.error.message).toMatch(/platform operator key/);
    }
    expect((await call(BOOTSTRAP, "GET", "/admin/queues")).status).toBe(200);
  });

  /** What a team admin must not be able to change, read straight from the database. */
  async function platformState() {
    const conn = await connectMongo(config.MONGO_URL, config.MONGO_DB);
    try {
      const db = conn.db!;
      return {
        keys: await db
          .collection("api_keys")
          .find({}, { projection: { keyId: 1, team: 1, role: 1, revokedAt: 1 } })
          .toArray(),
        teams: await db
          .collection("teams")
          .find({}, { projection: { name: 1, quota: 1, defaultPriority: 1 } })
          .toArray(),
        rateCards: await db.collection("rate_cards").countDocuments(),
      };
    } finally {
      await conn.close();
    }
  }

  it("a team admin cannot take over the platform or another team; nothing changes in the database", async () => {
    const platformKey = await call(BOOTSTRAP, "POST", `/v1/teams/${PLATFORM_TEAM}/keys`, { name: "ops-viewer", role: "viewer" });
    const bKeyId = (await call(b.viewer, "GET", "/v1/me")).json.keyId as string;
    const before = await platformState();
    const attempts: Array<[string, string, unknown, number]> = [
      // The reported escalation: an admin key of the bootstrap team, issued by another team's admin.
      ["POST", `/v1/teams/${PLATFORM_TEAM}/keys`, { name: "takeover", role: "admin" }, 404],
      ["POST", `/v1/teams/${b.name}/keys`, { name: "into-b", role: "viewer" }, 404],
      ["POST", `/v1/teams/${a.name}/keys`, { name: "above", role: "operator" }, 403],
      ["GET", `/v1/teams/${b.name}/keys`, undefined, 404],
      ["DELETE", `/v1/teams/${b.name}/keys/${bKeyId}`, undefined, 404],
      ["DELETE", `/v1/teams/${PLATFORM_TEAM}/keys/${platformKey.json.id}`, undefined, 404],
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpus: 1000 }, 403],
      ["PUT", `/v1/teams/${b.name}/quota`, { maxGpus: 0 }, 403],
      ["PUT", `/v1/teams/${b.name}/default-priority`, { priority: 1000 }, 404],
      ["PUT", `/v1/teams/${PLATFORM_TEAM}/default-priority`, { priority: -1000 }, 404],
      ["PUT", "/v1/pricing", { gpuTypes: { cpu: 0 } }, 403],
      ["GET", "/v1/pricing", undefined, 403],
      ["GET", "/v1/teams", undefined, 403],
      ["GET", `/v1/teams/${b.name}`, undefined, 404],
      ["GET", `/v1/teams/${PLATFORM_TEAM}`, undefined, 404],
      ["POST", "/v1/teams", { name: `rogue-${suffix}` }, 403],
      ["GET", `/v1/audit?team=${b.name}`, undefined, 404],
    ];
    for (const [method, path, body, status] of attempts) {
      const res = await call(a.admin, method, path, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(status);
      // An error message and nothing else: no field of what the path names.
      expect(Object.keys(res.json), `${method} ${path}`).toEqual(["error"]);
      expect(Object.keys(res.json.error)).toEqual(["message"]);
    }
    expect(await platformState()).toEqual(before);
    // B's key still works: the refused revoke changed nothing.
    expect((await call(b.viewer, "GET", "/v1/me")).status).toBe(200);
  });

  it("operator keys: only operators issue them, only in the platform team; no key revokes one above it", async () => {
    expect((await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "op-in-a", role: "operator" })).status).toBe(400);
    const op = await call(BOOTSTRAP, "POST", `/v1/teams/${PLATFORM_TEAM}/keys`, { name: "ops", role: "operator" });
    expect(op.status, op.text).toBe(201);
    // An issued operator key runs the platform like the bootstrap key.
    const team = await call(op.json.key, "POST", "/v1/teams", { name: `by-op-${suffix}` });
    expect(team.status, team.text).toBe(201);
    expect((await call(op.json.key, "GET", "/v1/me")).json).toMatchObject({ team: PLATFORM_TEAM, role: "operator" });
    // The platform team's plain admin is a team admin: it cannot revoke (or issue) an operator key.
    const pAdmin = await call(BOOTSTRAP, "POST", `/v1/teams/${PLATFORM_TEAM}/keys`, { name: "p-admin", role: "admin" });
    const revoke = await call(pAdmin.json.key, "DELETE", `/v1/teams/${PLATFORM_TEAM}/keys/${op.json.id}`);
    expect([revoke.status, revoke.json.error.message]).toEqual([
      403,
      "a key with the role 'admin' cannot revoke a key with the higher role 'operator'",
    ]);
    expect((await call(pAdmin.json.key, "POST", `/v1/teams/${PLATFORM_TEAM}/keys`, { name: "x", role: "operator" })).status).toBe(
      403,
    );
    expect((await call(pAdmin.json.key, "GET", "/v1/teams")).status).toBe(403);
    expect((await call(op.json.key, "GET", "/v1/teams")).status).toBe(200);
  });

  it("the audit log: operators read every team's events, a team's admins only their own", async () => {
    const own = await call(a.admin, "GET", "/v1/audit?limit=500");
    expect(own.status).toBe(200);
    const ownEvents = own.json.items as Json[];
    expect(ownEvents.length).toBeGreaterThan(0);
    expect(new Set(ownEvents.map((e) => e.team))).toEqual(new Set([a.name]));
    // The operator's changes to team A (keys issued for it) are A's events too.
    expect(ownEvents.some((e) => e.action === "key.issue" && e.actor.role === "operator")).toBe(true);
    const all = await call(BOOTSTRAP, "GET", "/v1/audit?limit=500");
    const teams = new Set((all.json.items as Json[]).map((e) => e.team));
    for (const t of [a.name, b.name, PLATFORM_TEAM]) expect(teams).toContain(t);
    const onlyB = await call(BOOTSTRAP, "GET", `/v1/audit?team=${b.name}&limit=500`);
    expect(new Set((onlyB.json.items as Json[]).map((e) => e.team))).toEqual(new Set([b.name]));
  });
});

describe("audit log", () => {
  it("records who submitted, cancelled and changed budgets, channels and keys; admins only", async () => {
    const job = await call(a.member, "POST", "/v1/jobs", jobSpec("c-a", "audited"));
    await call(a.member, "POST", `/v1/jobs/${job.json.id}/cancel`);
    const budget = await call(a.admin, "POST", "/v1/budgets", budgetSpec("audited"));
    await call(a.admin, "DELETE", `/v1/budgets/${budget.json.id}`);
    const res = await call(BOOTSTRAP, "GET", `/v1/audit?team=${a.name}&limit=500`);
    expect(res.status).toBe(200);
    const events = res.json.items as Json[];
    const find = (action: string, target: string) => events.find((e) => e.action === action && e.target === target);
    expect(find("job.submit", job.json.id)).toMatchObject({
      team: a.name,
      actor: { team: a.name, role: "member", keyName: "member-key" },
    });
    expect(find("job.cancel", job.json.id)?.request).toEqual({ method: "POST", path: `/v1/jobs/${job.json.id}/cancel` });
    expect(find("budget.create", budget.json.id)).toBeDefined();
    expect(find("budget.delete", budget.json.id)).toBeDefined();
    expect(events.filter((e) => e.action === "key.issue").length).toBeGreaterThanOrEqual(3);
    expect(events.some((e) => e.action === "key.revoke")).toBe(true);
    expect(res.text).not.toMatch(/tyk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/);
    // Refused changes are not events.
    expect(events.some((e) => e.action === "budget.create" && e.actor.role === "member")).toBe(false);
    expect((await call(BOOTSTRAP, "GET", "/v1/audit?action=nope")).status).toBe(400);
  });
});

describe("the published contract", () => {
  it("serves OpenAPI 3.1 and a reference page without a key", async () => {
    const doc = await call(null, "GET", "/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.json.openapi).toBe("3.1.0");
    expect(doc.json.paths["/v1/jobs"].post.requestBody.content["application/json"].schema.properties.resources).toBeDefined();
    expect(doc.json.components.securitySchemes.bearerAuth).toEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
    const page = await call(null, "GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.text).toContain("swagger-ui-bundle.js");
    const asset = await fetch(`${api.url}/docs/assets/swagger-ui-bundle.js`);
    expect(asset.status).toBe(200);
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});

describe("hostile input", () => {
  const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)|node_modules/);

  it("10 MB bodies get 413 before they are read, and memory stays flat", async () => {
    // One buffer, sent 21 times: the client allocates nothing per request, so growth is the server's.
    const big = Buffer.from(`{"name":"x","pad":"${"a".repeat(10 * 1024 * 1024)}"}`);
    const send = () =>
      fetch(`${api.url}/v1/budgets`, {
        method: "POST",
        headers: { authorization: `Bearer ${a.admin}`, "content-type": "application/json" },
        body: big,
      });
    const first = await send();
    expect(first.status).toBe(413);
    expect(await first.json()).toEqual({ error: { message: expect.stringMatching(/larger than the limit/) } });
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 20; i++) expect((await send()).status).toBe(413);
    global.gc?.();
    const grownMb = (process.memoryUsage().rss - before) / 1024 / 1024;
    // 20 x 10 MB went by; buffering them would show as hundreds of MB.
    expect(grownMb).toBeLessThan(80);
  });

  it("deep nesting, wrong content types, odd numbers and unknown fields: 4xx with a message, never 5xx", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const deepObject = `{"name":"d","scope":{"type":"team"},"limitUsd":1,"x":${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}}`;
    const raw: Array<[string, string, string, string]> = [
      ["POST", "/v1/jobs", deep, "application/json"],
      ["POST", "/v1/budgets", deepObject, "application/json"],
      ["POST", "/v1/jobs", "name=x", "application/x-www-form-urlencoded"],
      ["POST", "/v1/jobs", "<job/>", "text/xml"],
      ["PUT", `/v1/teams/${a.name}/quota`, '{"maxGpus": NaN}', "application/json"],
      ["PUT", `/v1/teams/${a.name}/quota`, '{"maxGpus": 1e400}', "application/json"],
    ];
    for (const [method, path, body, type] of raw) {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${BOOTSTRAP}`, "content-type": type },
        body,
      });
      const text = await res.text();
      expect([400, 413, 415], `${method} ${path} ${type} ${body.slice(0, 40)}: ${text.slice(0, 200)}`).toContain(res.status);
      expect(JSON.parse(text).error.message).toEqual(expect.any(String));
      noStack(text);
    }
    const json: Array<[string, string, unknown]> = [
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpus: -1 }],
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpus: 1.5 }],
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpus: Number.MAX_SAFE_INTEGER * 4 }],
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpus: "3" }],
      ["PUT", `/v1/teams/${a.name}/quota`, { maxGpu: 3 }],
      ["PUT", `/v1/teams/${a.name}/default-priority`, { priority: 1001 }],
      ["PUT", `/v1/teams/${a.name}/default-priority`, { priority: 1.5 }],
      ["PUT", `/v1/teams/${a.name}/default-priority`, { priority: "high" }],
      ["PUT", `/v1/teams/${a.name}/default-priority`, {}],
      ["PUT", `/v1/teams/${a.name}/default-priority`, { priority: 1, team: b.name }],
      ["POST", "/v1/teams", { name: "../etc" }],
      ["POST", "/v1/teams", { name: "ok", admin: true }],
      ["POST", `/v1/teams/${a.name}/keys`, { name: "k", role: "admin", expiresInDays: 1e308 }],
      ["POST", "/v1/budgets", { name: "b", scope: { type: "team" }, limitUsd: -5 }],
      ["POST", "/v1/budgets", { name: "b", scope: { type: "team" }, limitUsd: 1e300 }],
      ["GET", "/v1/jobs?limit=-1", undefined],
      ["GET", "/v1/jobs?limit=1e9", undefined],
      ["GET", "/v1/jobs?cursor=NaN", undefined],
      ["GET", "/v1/audit?limit=0", undefined],
    ];
    for (const [method, path, body] of json) {
      const res = await call(BOOTSTRAP, method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect(res.json.error.message).toEqual(expect.any(String));
      noStack(res.text);
    }
  });
});

describe("unique names", () => {
  it("renaming a budget or channel onto an existing name is a 409, not a 500", async () => {
    const first = await call(a.admin, "POST", "/v1/budgets", budgetSpec("taken"));
    const second = await call(a.admin, "POST", "/v1/budgets", budgetSpec("free"));
    expect([first.status, second.status]).toEqual([201, 201]);
    const res = await call(a.admin, "PUT", `/v1/budgets/${second.json.id}`, budgetSpec("taken"));
    expect([res.status, res.json.error.message]).toEqual([409, "a budget named 'taken' already exists"]);
    const c1 = await call(a.admin, "POST", "/v1/alert-channels", channelSpec("taken"));
    const c2 = await call(a.admin, "POST", "/v1/alert-channels", channelSpec("free"));
    expect([c1.status, c2.status]).toEqual([201, 201]);
    expect((await call(a.admin, "PUT", `/v1/alert-channels/${c2.json.id}`, channelSpec("taken"))).status).toBe(409);
  });
});

describe("rate limiting", () => {
  it("a burst beyond the per-key limit gets 429 with Retry-After; other keys are unaffected", async () => {
    const limited = await startApi(
      loadConfig(apiConfigShape, { ...configEnv(), API_RATE_LIMIT: "5", API_RATE_LIMIT_WINDOW_MS: "60000" }),
      createLogger("api", "silent"),
    );
    try {
      const get = (token: string) =>
        fetch(`${limited.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({
          status: r.status,
          retryAfter: r.headers.get("retry-after"),
          body: await r.text(),
        }));
      // Fresh keys: the counters live in Redis and are shared with the other API instance.
      const fresh = async () =>
        (await call(BOOTSTRAP, "POST", `/v1/teams/${a.name}/keys`, { name: "burst", role: "viewer" })).json.key as string;
      const [burstKey, otherKey] = [await fresh(), await fresh()];
      const burst = await Promise.all(Array.from({ length: 12 }, () => get(burstKey)));
      expect(burst.filter((r) => r.status === 200)).toHaveLength(5);
      const refused = burst.filter((r) => r.status === 429);
      expect(refused).toHaveLength(7);
      for (const r of refused) {
        expect(Number(r.retryAfter)).toBeGreaterThan(0);
        expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
        expect(JSON.parse(r.body).error.message).toMatch(/rate limit of 5 requests per 60 s exceeded/);
      }
      expect((await get(otherKey)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
