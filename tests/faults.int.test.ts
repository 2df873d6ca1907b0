import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type JobView, launcherConfigShape, loadConfig, SecretBox } from "@trainyard/common";
import { COST_TICK_SCHEDULER } from "@trainyard/core";
import { createRepos, RedisDocumentLocks } from "@trainyard/db";
import { startLauncher } from "@trainyard/launcher";
import type { RunningService } from "@trainyard/runtime";
import { INFRA_DIR, processesOfAttempt } from "@trainyard/testkit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import mongoose, { type Connection } from "mongoose";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import {
  EXAMPLE_TRAIN,
  type Platform,
  registerCluster,
  startPlatform,
  startServiceProcess,
  submitJob,
  waitForJob,
} from "./harness";

/*
 * Fault injection with real processes: each fault is injected by the test (a Redis stopped or
 * flushed, a service killed with SIGKILL, a node's sshd frozen with SIGSTOP) and each case checks
 * the nodes' real processes (every rank of a gang exactly once, nothing of an abandoned attempt
 * left) and the database, not only the API's answers. Redis faults use a redis-server of this
 * file's own, so no other test sees them.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once("exit", () => r()));
}

/** A redis-server of this file's own, configured as in production (AOF, noeviction), that the test may stop. */
class DedicatedRedis {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), "ty-faults-redis-"));
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    if (this.child) return;
    this.child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--appendonly",
        "yes",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
      ],
      { stdio: "ignore" },
    );
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    for (let i = 0; ; i++) {
      try {
        await probe.connect();
        if ((await probe.ping()) === "PONG") break;
      } catch {
        if (i > 100) throw new Error(`redis-server on ${this.port} did not start`);
        await sleep(100);
      }
    }
    probe.disconnect();
  }
  /** Stop it (SIGTERM: it writes its AOF and exits, as a restart in production would). */
  async stop(): Promise<void> {
    if (!this.child) return;
    this.child.kill("SIGTERM");
    await exited(this.child);
    this.child = undefined;
  }
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A FerretDB of this file's own on the shared PostgreSQL (the data lives there): killing and
 * restarting it is a database restart for the services using it, and for no other test.
 */
class DedicatedFerret {
  private child?: ChildProcess;
  readonly state = mkdtempSync(join(tmpdir(), "ty-faults-ferret-"));
  constructor(readonly port: number) {}
  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }
  async start(): Promise<void> {
    if (this.child) return;
    const pass = readFileSync(join(INFRA_DIR, "postgres/ferretdb.password"), "utf8").trim();
    this.child = spawn(
      join(INFRA_DIR, "bin/ferretdb"),
      [
        "--handler=postgresql",
        `--listen-addr=127.0.0.1:${this.port}`,
        "--telemetry=disable",
        `--state-dir=${this.state}`,
        "--debug-addr=-",
      ],
      {
        stdio: "ignore",
        env: { ...process.env, FERRETDB_POSTGRESQL_URL: `postgres://ferretdb:${pass}@127.0.0.1:5439/ferretdb` },
      },
    );
    for (let i = 0; ; i++) {
      try {
        const c = await mongoose.createConnection(this.url, { serverSelectionTimeoutMS: 500 }).asPromise();
        await c.db!.command({ ping: 1 });
        await c.close();
        return;
      } catch {
        if (i > 100) throw new Error(`ferretdb on ${this.port} did not start`);
        await sleep(200);
      }
    }
  }
  /** SIGKILL: a crash, the harshest restart. */
  async kill(): Promise<void> {
    if (!this.child) return;
    this.child.kill("SIGKILL");
    await exited(this.child);
    this.child = undefined;
  }
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.state, { recursive: true, force: true });
  }
}

/** Rank processes of an attempt on every node: rank number -> node users it runs as (one each, for one gang). */
function ranksOf(attemptId: string): Map<number, string[]> {
  const users = new Map<number, string>();
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && uid) users.set(Number(uid), name);
  }
  const ranks = new Map<number, string[]>();
  for (const pid of processesOfAttempt(attemptId)) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
      const rank = env.find((e) => e.startsWith("RANK="));
      if (!rank || !env.some((e) => e.startsWith("LOCAL_RANK="))) continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
      const r = Number(rank.slice(5));
      ranks.set(r, [...(ranks.get(r) ?? []), users.get(uid) ?? String(uid)]);
    } catch {
      // process ended meanwhile
    }
  }
  return ranks;
}

/** Wait until the attempt's gang is up, then check it is exactly one: ranks 0..n-1, each once, `perNode` per node. */
async function expectOneGang(attemptId: string, worldSize: number, perNode: number): Promise<void> {
  let ranks = ranksOf(attemptId);
  for (let i = 0; i < 300 && ranks.size < worldSize; i++) {
    await sleep(100);
    ranks = ranksOf(attemptId);
  }
  expect([...ranks.keys()].sort()).toEqual(Array.from({ length: worldSize }, (_, i) => i));
  for (const [rank, where] of ranks) expect(where, `rank ${rank} runs ${where.length} times`).toHaveLength(1);
  const perUser = new Map<string, number>();
  for (const [, [user]] of ranks) perUser.set(user!, (perUser.get(user!) ?? 0) + 1);
  for (const [user, n] of perUser) expect(n, `ranks on ${user}`).toBe(perNode);
}

const ddp = (cluster: string, steps: number, extra: Record<string, unknown> = {}) => ({
  name: `faults-${steps}`,
  framework: "pytorch",
  cluster,
  resources: { nodes: 2, gpusPerNode: 2 },
  command: ["python3", "train.py", "--steps", String(steps), "--sleep", "0.25"],
  files: { "train.py": EXAMPLE_TRAIN },
  ...extra,
});

/** The platform's own database, read directly: what the API says is checked against it. */
async function openDb(p: Platform): Promise<Connection> {
  return mongoose.createConnection(p.env.MONGO_URL!, { dbName: p.env.MONGO_DB! }).asPromise();
}

async function jobDocs(conn: Connection): Promise<Array<{ _id: unknown; status: string; attempts: unknown[] }>> {
  return conn
    .db!.collection("jobs")
    .find({}, { projection: { status: 1, attempts: 1 } })
    .toArray() as never;
}

describe("faults: Redis", () => {
  let redis: DedicatedRedis;
  let p: Platform;
  let db: Connection;

  beforeAll(async () => {
    redis = new DedicatedRedis(await freePort());
    await redis.start();
    p = await startPlatform({ env: { REDIS_URL: redis.url } });
    db = await openDb(p);
  });
  afterAll(async () => {
    const t0 = Date.now();
    const step = (what: string) => console.log(`[faults] afterAll ${what} at ${Date.now() - t0} ms`);
    await db?.close();
    // The platform needs its Redis to close its queues cleanly.
    await redis.start().catch(() => undefined);
    step("redis up");
    await p?.close();
    step("platform closed");
    await redis?.destroy();
  });

  it("Redis stopped for 20 s: the API answers 503 + Retry-After at once (never hangs, never 500); workers resume; nothing lost or doubled", async () => {
    const cluster = await registerCluster(p);
    const first = await submitJob(p, ddp(cluster.name, 60));
    const running = await waitForJob(p, first, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 2);
    await expectOneGang(running.attempts[0]!.id, 4, 2);

    await redis.stop();
    const answers: Array<{ status: number; retryAfter: string | null; message: string; ms: number }> = [];
    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const t0 = Date.now();
      const res = await fetch(`${p.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${p.token}`, "content-type": "application/json", ...headers },
        ...(body ? { body: JSON.stringify(body) } : {}),
        // A hang fails the test here rather than at the test's own timeout.
        signal: AbortSignal.timeout(15_000),
      });
      const json = (await res.json()) as { error?: { message?: string } };
      answers.push({
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        message: json.error?.message ?? "",
        ms: Date.now() - t0,
      });
    };
    const second = ddp(cluster.name, 8, { name: "after-outage" });
    const outageEnds = Date.now() + 20_000;
    while (Date.now() < outageEnds) {
      await call("POST", "/v1/jobs", second, { "idempotency-key": "submitted-during-outage" });
      await call("GET", `/v1/jobs/${first}`);
      await sleep(500);
    }
    await redis.start();

    expect(answers.length).toBeGreaterThan(10);
    for (const a of answers) {
      expect(a.status, JSON.stringify(a)).toBe(503);
      expect(a.retryAfter).toBe("5");
      expect(a.message).toMatch(/Redis/);
    }
    console.log(`[faults] Redis down: ${answers.length} answers, slowest ${Math.max(...answers.map((a) => a.ms))} ms`);

    // The client repeats its submit after Retry-After (the API reconnects within a few): accepted once, same key.
    let again = await p.api<{ id: string }>("POST", "/v1/jobs", second, { "idempotency-key": "submitted-during-outage" });
    for (let i = 0; i < 10 && again.status === 503; i++) {
      await sleep(5_000);
      again = await p.api<{ id: string }>("POST", "/v1/jobs", second, { "idempotency-key": "submitted-during-outage" });
    }
    expect(again.status).toBe(202);
    const done = await waitForJob(p, first);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.attempts).toHaveLength(1);
    const after = await waitForJob(p, again.body.id);
    expect(after.status).toBe("SUCCEEDED");
    expect(after.attempts).toHaveLength(1);

    // The database holds exactly these two jobs, each run once, and nothing of them runs anywhere.
    const docs = await jobDocs(db);
    expect(docs.map((d) => String(d._id)).sort()).toEqual([first, again.body.id].sort());
    for (const d of docs) expect(d.attempts).toHaveLength(1);
    expect(processesOfAttempt(done.attempts[0]!.id)).toEqual([]);
    expect(processesOfAttempt(after.attempts[0]!.id)).toEqual([]);
  });

  it("Redis FLUSHALL: one reconcile sweep rebuilds checks, scheduling passes and cost ticks; the running job keeps its gang and finishes", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    // One job fills the cluster, the second waits for it in the queue.
    const runningId = await submitJob(p, ddp(cluster.name, 50));
    const running = await waitForJob(p, runningId, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 2);
    const waitingId = await submitJob(p, ddp(cluster.name, 6, { name: "queued-behind" }));
    await waitForJob(p, waitingId, (j) => j.status === "QUEUED" && !!j.waitingReason?.startsWith("waiting for capacity"));
    const attempt = running.attempts[0]!.id;
    await expectOneGang(attempt, 4, 2);
    const pidsBefore = processesOfAttempt(attempt).sort();

    const admin = new Redis(redis.url);
    const queue = (name: string) => new Queue(name, { connection: admin, prefix: p.env.TRAINYARD_QUEUE_PREFIX });
    const [monitorQ, scheduleQ, costQ] = [queue("cluster-checks"), queue("schedule"), queue("cost")];
    try {
      await admin.flushall();
      const flushedAt = Date.now();
      // Rebuilt from the database by the services' sweeps (RECONCILE_INTERVAL_MS = 2 s here).
      let rebuilt = { check: false, pass: false, ticks: false };
      while (!(rebuilt.check && rebuilt.pass && rebuilt.ticks) && Date.now() - flushedAt < 30_000) {
        const [mon, sched, ticks] = await Promise.all([
          monitorQ.getJobs(["delayed", "waiting", "active", "completed"]),
          scheduleQ.getJobs(["delayed", "waiting", "active", "completed"]),
          costQ.getJobScheduler(COST_TICK_SCHEDULER),
        ]);
        rebuilt = {
          check: rebuilt.check || mon.some((j) => j.data.clusterId === cluster.id),
          pass: rebuilt.pass || sched.some((j) => j.data.clusterId === cluster.id),
          ticks: rebuilt.ticks || !!ticks,
        };
        await sleep(100);
      }
      console.log(`[faults] FLUSHALL: checks, passes and cost ticks rebuilt in ${Date.now() - flushedAt} ms`);
      expect(rebuilt).toEqual({ check: true, pass: true, ticks: true });
    } finally {
      await Promise.all([monitorQ.close(), scheduleQ.close(), costQ.close()]);
      admin.disconnect();
    }

    // The gang was never touched: the same processes, still one of each rank.
    await expectOneGang(attempt, 4, 2);
    expect(processesOfAttempt(attempt).filter((pid) => !pidsBefore.includes(pid))).toEqual([]);
    const done = await waitForJob(p, runningId);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.attempts).toHaveLength(1);
    expect(done.progress?.step).toBe(50);
    const next = await waitForJob(p, waitingId);
    expect(next.status).toBe("SUCCEEDED");
    expect(next.attempts).toHaveLength(1);
    // The cost service priced the finished job from truth after the flush.
    const priced = await db.collection("jobs").findOne({ _id: new mongoose.Types.ObjectId(runningId) });
    expect(priced?.cost?.final).toBe(true);
  });

  it("a cancel whose control message was lost: the launcher's sweep sends it again; CANCELLED, nothing left on the nodes", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    const id = await submitJob(p, ddp(cluster.name, 200, { name: "lost-stop" }));
    const running = await waitForJob(p, id, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 1);
    const attempt = running.attempts[0]!.id;
    // What the API's cancel stores (through the same document lock), without the control message
    // it sends next: as if Redis lost that message.
    const redisClient = new Redis(p.env.REDIS_URL!);
    try {
      const repos = createRepos(
        db,
        new SecretBox(p.env.TRAINYARD_SECRET_KEY!),
        new RedisDocumentLocks(redisClient, p.env.TRAINYARD_QUEUE_PREFIX!),
      );
      const requested = await repos.jobs.requestStop(id, attempt, {
        kind: "cancel",
        reason: "cancelled by user (its control message lost)",
        requestedAt: new Date(),
      });
      expect(requested?.stopRequest?.kind).toBe("cancel");
    } finally {
      redisClient.disconnect();
    }
    // The launcher's sweep (RECONCILE_INTERVAL_MS = 2 s here) finds the stop and sends it again.
    const done = await waitForJob(p, id, undefined, 60_000);
    expect(done.status).toBe("CANCELLED");
    expect(done.attempts).toHaveLength(1);
    // Stopped, not run to its end.
    expect(done.progress?.step ?? 0).toBeLessThan(200);
    expect(processesOfAttempt(attempt)).toEqual([]);
  });
});

describe("faults: services killed", () => {
  let p: Platform;
  let db: Connection;
  const children: ChildProcess[] = [];
  const inProcess: RunningService[] = [];

  let monitor: ChildProcess;
  let cost: ChildProcess;
  // Each service process's last log lines, printed when a test fails: what it was doing then.
  const logs = new Map<ChildProcess, { service: string; log: string[] }>();
  const spawnService = async (service: "launcher" | "monitor" | "cost", env: Record<string, string> = {}) => {
    const s = await startServiceProcess(service, { ...p.env, ...env });
    children.push(s.child);
    logs.set(s.child, { service, log: s.log });
    return s.child;
  };
  const printLogsOnFailure = () =>
    onTestFailed(() => {
      for (const [child, { service, log }] of logs)
        console.error(`--- ${service} pid ${child.pid} (exit ${child.exitCode}), last lines:\n${log.slice(-80).join("\n")}`);
    });

  beforeAll(async () => {
    // Launcher, monitor and cost run as their own processes here (API and alerting in this one).
    p = await startPlatform({ launchers: 0, monitors: 0, costs: 0, env: { LAUNCH_LEASE_MS: "4000", COST_INTERVAL_MS: "1000" } });
    db = await openDb(p);
    [monitor, cost] = await Promise.all([spawnService("monitor"), spawnService("cost")]);
  });
  afterAll(async () => {
    for (const c of children) {
      c.kill("SIGKILL");
      await exited(c);
    }
    for (const s of inProcess) await s.close();
    await db?.close();
    await p?.close();
  });

  it("kill -9 of the launcher while a gang is half started (a node's sshd frozen): a replica takes over, exactly one gang runs, SUCCEEDED", async () => {
    printLogsOnFailure();
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    const n2 = p.infra.nodes.find((n) => n.name === "n2")!;
    const sshdPid = Number(readFileSync(n2.sshdPidFile, "utf8").trim());
    const first = { child: await spawnService("launcher", { SSH_CONNECT_TIMEOUT_MS: "120000" }) };
    let id = "";
    let launching: JobView;
    process.kill(sshdPid, "SIGSTOP");
    try {
      id = await submitJob(p, ddp(cluster.name, 12));
      // The launcher claimed the job and set up n1; its connection to n2 hangs on the frozen sshd.
      launching = await waitForJob(p, id, (j) => j.status === "LAUNCHING");
      await sleep(1500);
      first.child.kill("SIGKILL");
      await exited(first.child);
    } finally {
      process.kill(sshdPid, "SIGCONT");
    }
    const abandoned = launching.attempts[0]!.id;
    // The replica: its reconciler finds the launch's lease run out and takes it over.
    inProcess.push(
      await startLauncher(loadConfig(launcherConfigShape, p.env), createLogger("launcher", p.env.LOG_LEVEL ?? "warn")),
    );
    const relaunched = await waitForJob(p, id, (j) => j.status === "RUNNING" && j.attempts.length === 2, 120_000);
    expect(relaunched.attempts[0]).toMatchObject({ outcome: "FAILED" });
    expect(relaunched.attempts[0]!.reason).toMatch(/launcher starting this attempt was lost; nothing of it is left/);
    const second = relaunched.attempts[1]!.id;
    await expectOneGang(second, 4, 2);
    expect(processesOfAttempt(abandoned)).toEqual([]);

    const done = await waitForJob(p, id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.attempts.map((a) => a.outcome)).toEqual(["FAILED", "SUCCEEDED"]);
    expect(processesOfAttempt(second)).toEqual([]);
    // The database: no reservation left on the cluster, no lease left on the job.
    const doc = await db.collection("jobs").findOne({ _id: new mongoose.Types.ObjectId(id) });
    expect(doc?.launchLeaseUntil).toBeUndefined();
    const clusterDoc = await db.collection("clusters").findOne({ _id: new mongoose.Types.ObjectId(cluster.id) });
    expect(clusterDoc?.allocations ?? []).toEqual([]);
  });

  it("SIGTERM of the launcher mid-launch finishes the launch; kill -9 of monitor and cost mid-pass, then SIGTERM of their replicas: one gang, SUCCEEDED, priced", async () => {
    printLogsOnFailure();
    // Only the launcher process of this test launches.
    for (const s of inProcess.splice(0)) await s.close();
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    const launcher = await spawnService("launcher");
    // n2's sshd frozen holds the launch in LAUNCHING, so the SIGTERM surely falls mid-launch (a
    // launch on idle nodes takes ~100 ms: polling for LAUNCHING alone could miss it).
    const n2 = p.infra.nodes.find((n) => n.name === "n2")!;
    const sshdPid = Number(readFileSync(n2.sshdPidFile, "utf8").trim());
    let id: string;
    process.kill(sshdPid, "SIGSTOP");
    try {
      id = await submitJob(p, ddp(cluster.name, 160));
      await waitForJob(p, id, (j) => j.status === "LAUNCHING");
      launcher.kill("SIGTERM");
      await sleep(1000);
    } finally {
      process.kill(sshdPid, "SIGCONT");
    }
    await exited(launcher);
    // Graceful: the pass it was running finished first, so the gang started and the job runs.
    expect(launcher.exitCode).toBe(0);
    const running = await waitForJob(p, id, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 2);
    expect(running.attempts).toHaveLength(1);
    const attempt = running.attempts[0]!.id;
    await expectOneGang(attempt, 4, 2);

    // kill -9 while they check and price every second; replicas take over.
    monitor.kill("SIGKILL");
    cost.kill("SIGKILL");
    await Promise.all([exited(monitor), exited(cost)]);
    [monitor, cost] = await Promise.all([spawnService("monitor"), spawnService("cost")]);
    const stepAfterKill = (await waitForJob(p, id, (j) => j.status === "RUNNING")).progress?.step ?? 0;
    // The new monitor records progress again.
    await waitForJob(p, id, (j) => (j.progress?.step ?? 0) > stepAfterKill + 4 || j.status !== "RUNNING");

    // SIGTERM while busy: each exits cleanly (0) after its handlers finish.
    monitor.kill("SIGTERM");
    cost.kill("SIGTERM");
    await Promise.all([exited(monitor), exited(cost)]);
    expect([monitor.exitCode, cost.exitCode]).toEqual([0, 0]);
    [monitor, cost] = await Promise.all([spawnService("monitor"), spawnService("cost")]);

    const done = await waitForJob(p, id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.attempts).toHaveLength(1);
    expect(done.progress?.step).toBe(160);
    expect(processesOfAttempt(attempt)).toEqual([]);
    // Priced to the end from truth by whichever cost replica got the `ended` event.
    for (let i = 0; i < 100; i++) {
      const doc = await db.collection("jobs").findOne({ _id: new mongoose.Types.ObjectId(id) });
      if (doc?.cost?.final) break;
      await sleep(200);
    }
    const priced = await db.collection("jobs").findOne({ _id: new mongoose.Types.ObjectId(id) });
    expect(priced?.cost?.final).toBe(true);
    expect(priced?.cost?.gpuHours).toBeGreaterThan(0);
  });
});

describe("faults: database", () => {
  let ferret: DedicatedFerret;
  let p: Platform;

  beforeAll(async () => {
    ferret = new DedicatedFerret(await freePort());
    await ferret.start();
    // No launcher: the submitted jobs stay queued; this is about the API under a restart.
    // No rate limit: four submitters at full speed pass the default 1,200 per minute in seconds.
    p = await startPlatform({ launchers: 0, env: { MONGO_URL: ferret.url, API_RATE_LIMIT: "1000000" } });
  });
  afterAll(async () => {
    await ferret?.start().catch(() => undefined);
    await p?.close();
    await ferret?.destroy();
  });

  it("the database restarted under load: every answer is 202 or 503 + Retry-After (never 500, never a hang); every 202 id exists afterwards", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    const answers: Array<{ status: number; retryAfter: string | null; id?: string }> = [];
    let stop = false;
    const submitter = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const res = await fetch(`${p.url}/v1/jobs`, {
          method: "POST",
          headers: { authorization: `Bearer ${p.token}`, "content-type": "application/json" },
          body: JSON.stringify(ddp(cluster.name, 5, { name: `load-${w}-${i}` })),
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await res.json()) as { id?: string };
        answers.push({ status: res.status, retryAfter: res.headers.get("retry-after"), ...(body.id ? { id: body.id } : {}) });
      }
    };
    const load = [0, 1, 2, 3].map(submitter);
    await sleep(3_000);
    await ferret.kill();
    await sleep(3_000);
    await ferret.start();
    await sleep(4_000);
    stop = true;
    await Promise.all(load);

    const counts: Record<number, number> = {};
    for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
    console.log(`[faults] database restart under load: answers by status ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).filter((s) => s !== "202" && s !== "503")).toEqual([]);
    for (const a of answers.filter((x) => x.status === 503)) expect(a.retryAfter).toBe("1");
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.id!);
    expect(accepted.length).toBeGreaterThan(0);
    // Every accepted submit is in the database, each once, waiting in the queue.
    const db = await mongoose.createConnection(ferret.url, { dbName: p.env.MONGO_DB! }).asPromise();
    try {
      const stored = await db
        .db!.collection("jobs")
        .find({ _id: { $in: accepted.map((id) => new mongoose.Types.ObjectId(id)) } }, { projection: { status: 1 } })
        .toArray();
      expect(stored.map((d) => String(d._id)).sort()).toEqual([...new Set(accepted)].sort());
      expect(new Set(accepted).size).toBe(accepted.length);
      for (const d of stored) expect(["PENDING", "QUEUED"]).toContain(d.status);
    } finally {
      await db.close();
    }
  });
});

describe("faults: a node's disk full", () => {
  let p: Platform;
  let db: Connection;
  // A 256 KiB tmpfs as n1's work root (root may mount here); unmounted after.
  let workRoot = "";
  let mounted = false;

  beforeAll(async () => {
    workRoot = mkdtempSync("/var/tmp/ty-faults-full-");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", workRoot]);
    mounted = true;
    p = await startPlatform();
    db = await openDb(p);
    const n1 = p.infra.nodes.find((n) => n.name === "n1")!;
    execFileSync("chown", [`${n1.user}:${n1.user}`, workRoot]);
  });
  afterAll(async () => {
    await db?.close();
    await p?.close();
    if (mounted) execFileSync("umount", [workRoot]);
    if (workRoot) rmSync(workRoot, { recursive: true, force: true });
  });

  it("the launch fails with a clear reason, nothing of the attempt runs anywhere, and its reservation is freed", async () => {
    const [n1, n2] = ["n1", "n2"].map((name) => p.infra.nodes.find((n) => n.name === name)!);
    const cluster = await registerCluster(p, {
      nodes: ["n2"],
      extraNodes: [{ name: "n1", host: n1!.host, port: n1!.port, user: n1!.user, gpus: 2, gpuType: "cpu", workRoot }],
      hostKeys: { n1: n1!.hostKeyFingerprint, n2: n2!.hostKeyFingerprint },
    });
    // 400 KB of job files cannot fit in n1's 256 KiB work root.
    const id = await submitJob(
      p,
      ddp(cluster.name, 5, { files: { "train.py": EXAMPLE_TRAIN, "data.txt": "x".repeat(400_000) } }),
    );
    const job = await waitForJob(p, id);
    expect(job.status).toBe("FAILED");
    expect(job.attempts).toHaveLength(1);
    expect(job.failure?.reason).toMatch(
      /^node n1 failed to start: no space left on n1:\/var\/tmp\/ty-faults-full-\w+: \d+ KB free, the attempt's files need \d+ KB/,
    );
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
    const clusterDoc = await db.collection("clusters").findOne({ _id: new mongoose.Types.ObjectId(cluster.id) });
    expect(clusterDoc?.allocations ?? []).toEqual([]);
  });

  it("the disk fills while the job checkpoints: the job fails, and only checkpoints written in full are registered", async () => {
    // What the previous case left on the small disk goes; n1 alone fits this job (3 GPUs), so its
    // rank 0 writes the checkpoints there.
    rmSync(join(workRoot, "jobs"), { recursive: true, force: true });
    const [n1, n2] = ["n1", "n2"].map((name) => p.infra.nodes.find((n) => n.name === name)!);
    const cluster = await registerCluster(p, {
      nodes: ["n2"],
      extraNodes: [{ name: "n1", host: n1!.host, port: n1!.port, user: n1!.user, gpus: 3, gpuType: "cpu", workRoot }],
      hostKeys: { n1: n1!.hostKeyFingerprint, n2: n2!.hostKeyFingerprint },
    });
    const id = await submitJob(p, {
      ...ddp(cluster.name, 400),
      resources: { nodes: 1, gpusPerNode: 3 },
      command: ["python3", "train.py", "--steps", "400", "--sleep", "0.1", "--checkpoint-every", "5"],
    });
    type Listed = { items: Array<{ path: string; state: string; step: number }> };
    let listed: Listed["items"] = [];
    for (let i = 0; i < 600 && !listed.length; i++) {
      listed = (await p.api<Listed>("GET", `/v1/jobs/${id}/checkpoints`)).body.items ?? [];
      if (!listed.length) await sleep(200);
    }
    expect(listed.length).toBeGreaterThan(0);
    // Fill the disk: the next checkpoint cannot be written in full.
    const filler = openSync(join(workRoot, "filler"), "w");
    try {
      const chunk = Buffer.alloc(16 * 1024, 1);
      for (;;) writeSync(filler, chunk);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      closeSync(filler);
    }
    const job = await waitForJob(p, id);
    expect(job.status).toBe("FAILED");
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);

    // Every registered checkpoint is a complete one on disk (renamed into place after its write);
    // a partial write (a .tmp- directory, or a step never announced) is never registered.
    const registered = (await p.api<Listed>("GET", `/v1/jobs/${id}/checkpoints`)).body.items;
    expect(registered.length).toBeGreaterThan(0);
    const ckDir = join(workRoot, "jobs", id, "checkpoints");
    const onDisk = readdirSync(ckDir);
    for (const c of registered) {
      expect(c.state).toBe("complete");
      expect(c.path.startsWith(`${ckDir}/step-`), c.path).toBe(true);
      expect(existsSync(join(c.path, "state.pt")), c.path).toBe(true);
      expect(statSync(join(c.path, "state.pt")).size).toBeGreaterThan(0);
    }
    console.log(
      `[faults] disk full: ${registered.length} checkpoint(s) registered, on disk: ${onDisk.join(" ")}, job failure: ${job.failure?.reason}`,
    );
  });
});
