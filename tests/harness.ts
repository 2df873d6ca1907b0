import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startAlerting } from "@trainyard/alerting";
import { startApi } from "@trainyard/api";
import {
  alertingConfigShape,
  apiConfigShape,
  costConfigShape,
  createLogger,
  type JobView,
  launcherConfigShape,
  loadConfig,
  monitorConfigShape,
  QUEUE_NAMES,
} from "@trainyard/common";
import { startCost } from "@trainyard/cost";
import { startLauncher } from "@trainyard/launcher";
import { startMonitor } from "@trainyard/monitor";
import type { RunningService } from "@trainyard/runtime";
import { type Infra, loadInfra, REPO_ROOT } from "@trainyard/testkit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import mongoose from "mongoose";

export interface PlatformOptions {
  launchers?: number;
  monitors?: number;
  /** Replicas of the cost and alerting services (default 1 each). */
  costs?: number;
  alertings?: number;
  env?: Record<string, string>;
  /** Where every service logs (default stdout): tests that read the logs pass a sink. */
  logSink?: { write(line: string): void };
}

export interface Platform {
  infra: Infra;
  url: string;
  token: string;
  env: Record<string, string>;
  /** /metrics URL of every running service, by service name (one per replica). */
  metricsUrls: Record<string, string[]>;
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; text: string }>;
  close(): Promise<void>;
}

/** A JSON client of an API at `url`, calling with `token`. */
export function apiClient(url: string, token: string): Platform["api"] {
  return async (method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text (logs)
    }
    return { status: res.status, body: parsed as never, text };
  };
}

/**
 * The whole platform in this process, on real Redis, FerretDB and sshd nodes, isolated by a
 * unique database and queue prefix: one API, N launchers, N monitors, cost and alerting.
 */
export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  const infra = loadInfra();
  const id = randomBytes(4).toString("hex");
  const token = randomBytes(24).toString("hex");
  const env: Record<string, string> = {
    REDIS_URL: infra.redisUrl,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: `ty_e2e_${id}`,
    TRAINYARD_QUEUE_PREFIX: `tye2e-${id}`,
    TRAINYARD_SECRET_KEY: randomBytes(32).toString("base64"),
    API_ADMIN_TOKEN: token,
    PORT: "0",
    HOST: "127.0.0.1",
    HEALTH_PORT: "0",
    HEALTH_HOST: "127.0.0.1",
    MONITOR_INTERVAL_MS: "500",
    RECONCILE_INTERVAL_MS: "2000",
    COST_METRICS_MAX_AGE_MS: "500",
    STOP_GRACE_MS: "3000",
    NODE_LOST_AFTER_MISSES: "3",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    ...opts.env,
  };
  const logger = (name: string) => createLogger(name, env.LOG_LEVEL, opts.logSink);
  const services: RunningService[] = [];
  const api = await startApi(loadConfig(apiConfigShape, env), logger("api"));
  services.push(api);
  const metricsUrls: Record<string, string[]> = { api: [`${api.url}/metrics`], monitor: [], cost: [], alerting: [] };
  for (let i = 0; i < (opts.launchers ?? 1); i++)
    services.push(await startLauncher(loadConfig(launcherConfigShape, env), logger("launcher")));
  for (let i = 0; i < (opts.monitors ?? 1); i++) {
    const s = await startMonitor(loadConfig(monitorConfigShape, env), logger("monitor"));
    services.push(s);
    metricsUrls.monitor!.push(`http://127.0.0.1:${s.port}/metrics`);
  }
  for (let i = 0; i < (opts.costs ?? 1); i++) {
    const s = await startCost(loadConfig(costConfigShape, env), logger("cost"));
    services.push(s);
    metricsUrls.cost!.push(`http://127.0.0.1:${s.port}/metrics`);
  }
  for (let i = 0; i < (opts.alertings ?? 1); i++) {
    const s = await startAlerting(loadConfig(alertingConfigShape, env), logger("alerting"));
    services.push(s);
    metricsUrls.alerting!.push(`http://127.0.0.1:${s.port}/metrics`);
  }

  const call = apiClient(api.url, token);

  return {
    infra,
    url: api.url,
    token,
    env,
    metricsUrls,
    api: call,
    async close() {
      for (const s of services.reverse()) await s.close();
      const redis = new Redis(infra.redisUrl);
      for (const name of QUEUE_NAMES) {
        const q = new Queue(name, { connection: redis, prefix: env.TRAINYARD_QUEUE_PREFIX });
        await q.obliterate({ force: true });
        await q.close();
      }
      const locks = await redis.keys(`${env.TRAINYARD_QUEUE_PREFIX}:*`);
      if (locks.length) await redis.del(...locks);
      redis.disconnect();
      const conn = await mongoose.createConnection(infra.mongoUrl, { dbName: env.MONGO_DB }).asPromise();
      await conn.dropDatabase();
      await conn.close();
    },
  };
}

let portBlock = 0;
/**
 * A block of 64 ports for one test cluster, unique per process and call. Kept below Linux's
 * ephemeral range (32768-60999): the nodes are this machine, and a rank that binds 0.0.0.0:P fails
 * with "Address already in use" while any outgoing connection (SSH, Redis, MongoDB) holds local port P.
 */
export function testPortRange(): { min: number; max: number } {
  const min = 20000 + ((process.pid * 7 + portBlock++ * 64) % 12000);
  return { min, max: min + 63 };
}

/** A cluster of local sshd nodes; each cluster gets its own port range so tests never collide. */
export async function registerCluster(
  p: Platform,
  opts: {
    name?: string;
    nodes?: string[];
    gpus?: number;
    gpuType?: string;
    /** Replaces the nodes' env (default: the infra's PATH and PYTHONPATH). */
    env?: Record<string, string>;
    hostKeys?: Record<string, string>;
    extraNodes?: unknown[];
  } = {},
): Promise<{ id: string; name: string }> {
  const names = opts.nodes ?? ["n1", "n2"];
  const nodes = names.map((n) => {
    const node = p.infra.nodes.find((x) => x.name === n);
    if (!node) throw new Error(`infra has no node ${n}`);
    return {
      name: node.name,
      host: node.host,
      port: node.port,
      user: node.user,
      gpus: opts.gpus ?? 2,
      gpuType: opts.gpuType ?? "cpu",
      workRoot: node.workRoot,
    };
  });
  const body = {
    name: opts.name ?? `c-${randomBytes(3).toString("hex")}`,
    nodes: [...nodes, ...(opts.extraNodes ?? [])],
    ssh: {
      privateKey: readFileSync(p.infra.clientKeyPath, "utf8"),
      hostKeys:
        opts.hostKeys ??
        Object.fromEntries(nodes.map((n) => [n.name, p.infra.nodes.find((x) => x.name === n.name)!.hostKeyFingerprint])),
    },
    env: opts.env ?? p.infra.nodeEnv,
    ports: testPortRange(),
  };
  const res = await p.api<{ id: string; name: string }>("POST", "/v1/clusters", body);
  if (res.status !== 201) throw new Error(`cluster registration failed: ${res.status} ${res.text}`);
  return res.body;
}

export async function submitJob(p: Platform, spec: Record<string, unknown>): Promise<string> {
  const res = await p.api<{ id: string }>("POST", "/v1/jobs", spec);
  if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${res.text}`);
  return res.body.id;
}

export async function getJob(p: Platform, id: string): Promise<JobView> {
  const res = await p.api<JobView>("GET", `/v1/jobs/${id}`);
  if (res.status !== 200) throw new Error(`get job failed: ${res.status} ${res.text}`);
  return res.body;
}

/** Poll a job until `until` holds (default: a terminal status). */
export async function waitForJob(
  p: Platform,
  id: string,
  until: (j: JobView) => boolean = (j) => ["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"].includes(j.status),
  timeoutMs = 120_000,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | undefined;
  while (Date.now() < deadline) {
    last = await getJob(p, id);
    if (until(last)) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  // The gist first (CI output keeps only the start and end of long messages), then the whole job.
  const gist = last
    ? `status ${last.status}, step ${last.progress?.step ?? "-"}, attempts: ${last.attempts.map((a) => `${a.outcome ?? "current"}: ${a.reason ?? "-"}`).join(" | ")}`
    : "never read";
  throw new Error(
    `job ${id} did not reach the expected state in ${timeoutMs} ms; ${gist}; last: ${JSON.stringify(last, null, 1)}`,
  );
}

export const EXAMPLE_TRAIN = readFileSync(new URL("../examples/pytorch-ddp/train.py", import.meta.url), "utf8");

/** A new API key of `role` in `team` (created first when it is not the platform team), issued by the operator token. */
export async function issueKey(p: Platform, role: "viewer" | "member" | "admin", team = "default"): Promise<string> {
  if (team !== "default") {
    const created = await p.api("POST", "/v1/teams", { name: team });
    if (created.status !== 201 && created.status !== 409)
      throw new Error(`team creation failed: ${created.status} ${created.text}`);
  }
  const res = await p.api<{ key: string }>("POST", `/v1/teams/${team}/keys`, {
    name: `${role}-${randomBytes(3).toString("hex")}`,
    role,
  });
  if (res.status !== 201) throw new Error(`key issue failed: ${res.status} ${res.text}`);
  return res.body.key;
}

/** Headers that make `p.api` act as another key. */
export const asKey = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

/**
 * A service as its own OS process (`node --import tsx services/<name>/src/main.ts`), as deployed:
 * the test can SIGKILL or SIGTERM it. Resolves once the service logged that it started.
 */
/** BENCH_CPU_PROF_DIR set: each service process writes a V8 CPU profile there when it exits. */
const cpuProfileArgs = () =>
  process.env.BENCH_CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];

export async function startServiceProcess(
  service: "api" | "launcher" | "monitor" | "cost",
  env: Record<string, string>,
): Promise<{ child: ChildProcess; log: string[]; port: number }> {
  const child = spawn(
    process.execPath,
    [...cpuProfileArgs(), "--import", "tsx", join(REPO_ROOT, `services/${service}/src/main.ts`)],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, HEALTH_PORT: "0", HEALTH_HOST: "127.0.0.1", ...env, LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const log: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) log.push(line);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const deadline = Date.now() + 90_000;
  while (!log.some((l) => l.includes(`"${service} started"`))) {
    if (child.exitCode !== null) throw new Error(`${service} exited ${child.exitCode} at start:\n${log.join("\n")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${service} did not start:\n${log.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const started = JSON.parse(log.find((l) => l.includes(`"${service} started"`))!) as { port: number };
  return { child, log, port: started.port };
}
