import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createLogger, SecretBox } from "@trainyard/common";
import { collectCheckpoints, NodeGateway } from "@trainyard/core";
import { connectMongo, createRepos, RedisDocumentLocks, type Repos } from "@trainyard/db";
import { SshPool } from "@trainyard/ssh";
import { createObjectStore } from "@trainyard/storage";
import { emulatorCredentials, loadEmulators, uniqueBucketName } from "@trainyard/storage/testing";
import { processesOfAttempt, setNodeSshd } from "@trainyard/testkit";
import { Redis } from "ioredis";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_TRAIN, getJob, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of one rank of an attempt (looked up in /proc: the nodes are users of this machine). */
function rankPids(attemptId: string, rank: number): number[] {
  return processesOfAttempt(attemptId).filter((pid) => {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
      return env.includes(`RANK=${rank}`) && env.some((e) => e.startsWith("LOCAL_RANK="));
    } catch {
      return false;
    }
  });
}

const ddpJob = (cluster: string, extra: Record<string, unknown> = {}) => ({
  name: "ddp-ckpt",
  framework: "pytorch",
  cluster,
  resources: { nodes: 2, gpusPerNode: 2 },
  command: ["python3", "train.py", "--steps", "50", "--sleep", "0.25", "--checkpoint-every", "5"],
  files: { "train.py": EXAMPLE_TRAIN },
  retry: { maxRetries: 2, backoffSeconds: 1 },
  checkpoints: { keepLast: 2 },
  ...extra,
});

describe("recovery: a failed rank restarts the gang from the latest checkpoint", () => {
  let p: Platform;
  let conn: Connection;
  let redis: Redis;
  let repos: Repos;
  let ssh: SshPool;

  beforeAll(async () => {
    p = await startPlatform();
    conn = await connectMongo(p.env.MONGO_URL!, p.env.MONGO_DB!);
    redis = new Redis(p.env.REDIS_URL!);
    repos = createRepos(
      conn,
      new SecretBox(p.env.TRAINYARD_SECRET_KEY!),
      new RedisDocumentLocks(redis, p.env.TRAINYARD_QUEUE_PREFIX!),
    );
    ssh = new SshPool();
  });
  afterAll(async () => {
    await ssh?.close();
    await conn?.close();
    redis?.disconnect();
    await p?.close();
  });

  it("kill -9 of one rank: RETRYING, attempt 2 resumes at the checkpoint step, SUCCEEDED, nothing of attempt 1 left", async () => {
    const cluster = await registerCluster(p);
    const id = await submitJob(p, ddpJob(cluster.name));
    const running = await waitForJob(p, id, (j) => (j.progress?.step ?? 0) >= 12 && j.status === "RUNNING", 120_000);
    const first = running.attempts[0]!;
    const victims = rankPids(first.id, 3);
    expect(victims.length).toBeGreaterThan(0);
    for (const pid of victims) process.kill(pid, "SIGKILL");

    const job = await waitForJob(p, id, undefined, 180_000);
    expect(job.status, JSON.stringify(job.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
    expect(job.attempts).toHaveLength(2);
    expect(job.attempts[0]!.outcome).toBe("FAILED");
    // Which rank is named depends on which node reported first; the killed rank is preferred when seen.
    expect(job.attempts[0]!.reason).toMatch(/node n[12] rank \d+ .*restarting from the latest checkpoint/);
    expect(processesOfAttempt(first.id)).toEqual([]);

    // Attempt 2 resumed at a checkpoint step (not 0), as its log and metrics file show.
    const second = job.attempts[1]!;
    const n1 = p.infra.nodes[0]!;
    const metrics = readFileSync(`${n1.workRoot}/jobs/${id}/${second.id}/metrics.jsonl`, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const resumedAt = metrics[0].resumed_at_step as number;
    expect(resumedAt).toBeGreaterThanOrEqual(10);
    expect(resumedAt % 5).toBe(0);
    expect(metrics.find((m) => typeof m.step === "number" && m.checkpoint === undefined).step).toBe(resumedAt + 1);
    const log = (await p.api("GET", `/v1/jobs/${id}/logs?node=n1`)).text;
    expect(log).toMatch(new RegExp(`resumed from .*step-${resumedAt} at step ${resumedAt}`));
    expect(job.progress).toMatchObject({ step: 50, ratio: 1 });

    // keepLast 2: exactly the two newest checkpoints remain, in the registry and on disk.
    const listed = (
      await p.api<{ items: Array<{ id: string; step: number; path: string; state: string }> }>(
        "GET",
        `/v1/jobs/${id}/checkpoints`,
      )
    ).body.items;
    expect(listed.map((c) => c.state)).toEqual(["complete", "complete"]);
    const onDisk = readdirSync(`${n1.workRoot}/jobs/${id}/checkpoints`).filter((d) => d.startsWith("step-"));
    expect(onDisk.sort()).toEqual(listed.map((c) => c.path.split("/").pop()!).sort());
    expect(listed[0]!.step).toBeGreaterThan(listed[1]!.step);
    const latest = (await p.api<{ id: string }>("GET", `/v1/jobs/${id}/checkpoints/latest`)).body;
    expect(latest.id).toBe(listed[0]!.id);

    // A crash between the delete phases (record marked, files still there) leaks nothing after the next GC.
    const older = listed[1]!;
    await repos.checkpoints.markDeleting(new Types.ObjectId(older.id));
    expect(existsSync(older.path)).toBe(true);
    const gateway = new NodeGateway(ssh, repos.credentials, { stopGraceMs: 1000, logTailBytes: 4096, commandTimeoutMs: 30_000 });
    const doc = (await repos.jobs.byId(id))!;
    await collectCheckpoints(
      { repos, gateway, logger: createLogger("test", "silent") },
      doc,
      (await repos.clusters.byId(doc.clusterId))!,
    );
    expect(existsSync(older.path)).toBe(false);
    expect((await repos.checkpoints.listAll(doc._id)).map((c) => c.path)).toEqual([listed[0]!.path]);

    // The job is over, so even its latest checkpoint may now be deleted.
    expect((await p.api("DELETE", `/v1/jobs/${id}/checkpoints/${listed[0]!.id}`)).status).toBe(204);
    expect(existsSync(listed[0]!.path)).toBe(false);
  });

  it("fails a non-retryable failure at once, and honours maxRetries with every attempt's reason visible", async () => {
    const cluster = await registerCluster(p);
    const base = {
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      retry: { maxRetries: 1, backoffSeconds: 0 },
    };
    const syntax = await submitJob(p, { ...base, name: "syntax-error", command: ["python3", "-c", "def broken(:"] });
    const always = await submitJob(p, { ...base, name: "always-fails", command: ["python3", "-c", "import sys; sys.exit(1)"] });

    const s = await waitForJob(p, syntax);
    expect(s.status).toBe("FAILED");
    expect(s.attempts).toHaveLength(1);
    expect(s.failure!.reason).toContain("not retried: log matches fatal pattern /SyntaxError/");

    const a = await waitForJob(p, always);
    expect(a.status).toBe("FAILED");
    expect(a.attempts).toHaveLength(2);
    expect(a.attempts[0]!.reason).toContain("restarting from the latest checkpoint");
    expect(a.attempts[1]!.reason).toContain("retries exhausted (1 of 1 used)");
    expect(a.attempts.every((x) => x.outcome === "FAILED")).toBe(true);
  });

  it("restarts a stalled job (hang detection) and fails it when its retries are used up", async () => {
    const cluster = await registerCluster(p, { nodes: ["n3"] });
    const id = await submitJob(p, {
      name: "stalls",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      // One step of progress, then silence.
      command: [
        "python3",
        "-c",
        "import json, os, time; open(os.environ['TRAINYARD_METRICS_FILE'], 'a').write(json.dumps({'step': 1}) + '\\n'); time.sleep(600)",
      ],
      retry: { maxRetries: 1, backoffSeconds: 0 },
      hang: { stallSeconds: 10, action: "restart" },
    });
    const job = await waitForJob(p, id, undefined, 120_000);
    expect(job.status).toBe("FAILED");
    expect(job.attempts).toHaveLength(2);
    expect(job.attempts[0]!.reason).toMatch(/job stalled: no progress for \d+ s \(stall limit 10 s\).*restarting/);
    expect(job.attempts[1]!.reason).toMatch(/job stalled.*retries exhausted/);
    for (const a of job.attempts) expect(processesOfAttempt(a.id)).toEqual([]);
  });

  it("refuses to delete the latest checkpoint while the job can resume from it", async () => {
    const cluster = await registerCluster(p, { nodes: ["n3"] });
    // Exactly one checkpoint, then silence: nothing newer can be registered between the list and
    // the delete below, so "latest" is stable (a training loop would race the monitor's checks).
    const id = await submitJob(p, {
      name: "running-ckpt",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: [
        "python3",
        "-c",
        [
          "import json, os, time",
          "d = os.path.join(os.environ['TRAINYARD_CHECKPOINT_DIR'], 'step-4')",
          "os.makedirs(d, exist_ok=True)",
          "open(os.path.join(d, 'state.txt'), 'w').write('4')",
          "open(os.environ['TRAINYARD_METRICS_FILE'], 'a').write(json.dumps({'checkpoint': d, 'step': 4}) + '\\n')",
          "time.sleep(600)",
        ].join("\n"),
      ],
    });
    const listed = async () =>
      (await p.api<{ items: Array<{ id: string; step: number }> }>("GET", `/v1/jobs/${id}/checkpoints`)).body.items;
    const deadline = Date.now() + 120_000;
    while ((await listed()).length === 0 && Date.now() < deadline) {
      const job = await getJob(p, id);
      expect(
        ["QUEUED", "LAUNCHING", "RUNNING"],
        `job ended early: ${JSON.stringify(job.attempts.map((a) => a.reason))}`,
      ).toContain(job.status);
      await sleep(500);
    }
    const [latest] = await listed();
    expect(latest?.step).toBe(4);
    const res = await p.api<{ error: { message: string } }>("DELETE", `/v1/jobs/${id}/checkpoints/${latest!.id}`);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/latest complete checkpoint/);
    expect((await p.api("DELETE", `/v1/jobs/${id}/checkpoints/${new Types.ObjectId().toString()}`)).status).toBe(404);
    await p.api("POST", `/v1/jobs/${id}/cancel`);
    expect((await waitForJob(p, id)).status).toBe("CANCELLED");
  });
});

describe("recovery: lost nodes", () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ env: { NODE_LOST_AFTER_MISSES: "4" } });
  });
  afterAll(async () => {
    setNodeSshd(2, "start");
    await p?.close();
  });

  it("a short sshd restart does not restart the job", async () => {
    const cluster = await registerCluster(p);
    const id = await submitJob(p, {
      ...ddpJob(cluster.name),
      name: "blip",
      command: ["python3", "train.py", "--steps", "30", "--sleep", "0.2"],
    });
    await waitForJob(p, id, (j) => (j.progress?.step ?? 0) >= 3);
    setNodeSshd(2, "stop");
    await sleep(700);
    setNodeSshd(2, "start");
    const job = await waitForJob(p, id);
    expect(job.status).toBe("SUCCEEDED");
    expect(job.attempts).toHaveLength(1);
  });

  it("an sshd stopped for good: recovery continues on the spare node from the checkpoint", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2", "n3"] });
    const id = await submitJob(p, { ...ddpJob(cluster.name), name: "lost-node" });
    const running = await waitForJob(p, id, (j) => (j.progress?.step ?? 0) >= 7 && j.status === "RUNNING", 120_000);
    expect(running.attempts[0]!.nodes.map((n) => n.name)).toEqual(["n1", "n2"]);
    setNodeSshd(2, "stop");
    try {
      const job = await waitForJob(p, id, undefined, 180_000);
      expect(job.status, JSON.stringify(job.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
      expect(job.attempts).toHaveLength(2);
      expect(job.attempts[0]!.reason).toMatch(/node n2 lost/);
      expect(job.attempts[0]!.failedNode).toBe("n2");
      expect(job.attempts[1]!.nodes.map((n) => n.name)).toEqual(["n1", "n3"]);
      const log = (await p.api("GET", `/v1/jobs/${id}/logs?node=n1`)).text;
      expect(log).toMatch(/resumed from .*step-\d+ at step [1-9]\d*/);
    } finally {
      setNodeSshd(2, "start");
    }
    // The ranks left behind on n2 lose their peers and end; nothing of attempt 1 lingers.
    const first = (await getJob(p, id)).attempts[0]!.id;
    const deadline = Date.now() + 60_000;
    while (processesOfAttempt(first).length && Date.now() < deadline) await sleep(1000);
    expect(processesOfAttempt(first)).toEqual([]);
  });

  it("fails clearly when the lost node has no spare", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2"] });
    const id = await submitJob(p, {
      ...ddpJob(cluster.name),
      name: "no-spare",
      command: ["python3", "train.py", "--steps", "400", "--sleep", "0.2"],
    });
    await waitForJob(p, id, (j) => (j.progress?.step ?? 0) >= 2);
    setNodeSshd(2, "stop");
    try {
      const job = await waitForJob(p, id, undefined, 180_000);
      expect(job.status).toBe("FAILED");
      expect(job.failure!.node).toBe("n2");
      expect(job.failure!.reason).toMatch(/no spare node to recover on: n2 cannot be reached/);
    } finally {
      setNodeSshd(2, "start");
    }
  });
});

describe("recovery: checkpoints copied to an object store (MinIO)", () => {
  let p: Platform;
  const bucket = uniqueBucketName("tyck");
  let admin: ReturnType<typeof createObjectStore> | undefined;

  beforeAll(async () => {
    p = await startPlatform({ env: { NODE_LOST_AFTER_MISSES: "4" } });
    const emulators = loadEmulators();
    if (!emulators) throw new Error("emulators.json missing: run scripts/infra/emulators.sh");
    const credentials = emulatorCredentials(emulators, "s3", bucket);
    admin = createObjectStore(credentials);
    await admin.createBucket();
    const res = await p.api("POST", "/v1/storage-credentials", { name: "minio", credentials });
    expect(res.status).toBe(201);
    expect(res.text).not.toContain((credentials as { secretAccessKey: string }).secretAccessKey);
  });
  afterAll(async () => {
    setNodeSshd(1, "start");
    await admin?.deletePrefix("ck/").catch(() => 0);
    await admin?.destroyBucket().catch(() => undefined);
    await admin?.close();
    await p?.close();
  });

  it("losing the head node: the next attempt restores the checkpoint from the store onto a new head and resumes", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2", "n3"] });
    const id = await submitJob(p, {
      ...ddpJob(cluster.name),
      name: "stored-ckpt",
      checkpoints: { keepLast: 2, storage: { credential: "minio", prefix: "ck/" } },
    });
    const stored = async () =>
      (
        await p.api<{ items: Array<{ storedUri?: string; step: number }> }>("GET", `/v1/jobs/${id}/checkpoints`)
      ).body.items.filter((c) => c.storedUri);
    const deadline = Date.now() + 120_000;
    while ((await stored()).length === 0 && Date.now() < deadline) await sleep(500);
    const copies = await stored();
    expect(copies[0]?.storedUri).toMatch(new RegExp(`^s3://${bucket}/ck/${id}/step-\\d+-[0-9a-f]{24}\\.tar$`));
    expect((await admin!.list(`ck/${id}/`)).length).toBeGreaterThan(0);

    setNodeSshd(1, "stop");
    try {
      const job = await waitForJob(p, id, undefined, 180_000);
      expect(job.status, JSON.stringify(job.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
      expect(job.attempts[0]!.reason).toMatch(/node n1 lost/);
      expect(job.attempts[1]!.nodes.map((n) => n.name)).toEqual(["n2", "n3"]);
      const log = (await p.api("GET", `/v1/jobs/${id}/logs?node=n2`)).text;
      expect(log).toMatch(/resumed from .*step-\d+ at step [1-9]\d*/);
    } finally {
      setNodeSshd(1, "start");
    }
    const first = (await getJob(p, id)).attempts[0]!.id;
    const until = Date.now() + 60_000;
    while (processesOfAttempt(first).length && Date.now() < until) await sleep(1000);
    expect(processesOfAttempt(first)).toEqual([]);
  });
});
