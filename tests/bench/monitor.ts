/**
 * `pnpm bench:monitor` (part of `pnpm bench`): one monitor replica keeping N running attempts
 * checked (issue 9 P4). The platform's launcher starts N `sleep` jobs (1 node x 1 slot each) on
 * the 3 local sshd nodes (one cluster per 3 x 64 slots: a cluster lists each endpoint once); one
 * monitor runs as its own process (so its CPU is its own) at the product's default interval. For
 * WINDOW seconds the bench reads, once a second, when each attempt was last seen by a check:
 * lag = time since the last check - the interval (a check is due every interval). The baseline is
 * the interval itself: p99 lag / interval < 1 is the goal. Every process the bench started on the
 * nodes is killed at the end, by pid.
 * The nodes are the integration tests' nodes, and those tests freeze and crash them and kill every
 * node process after each file: run it holding their lock too (flock /tmp/trainyard-int.lock).
 * Usage: pnpm bench:monitor [levels=100,1000] [window seconds=60]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectMongo } from "@trainyard/db";
import { REPO_ROOT } from "@trainyard/testkit";
import { Types } from "mongoose";
import { type Platform, startPlatform } from "../harness";
import { load, load1, pct, ratio, round, writeResults } from "./lib";

const LEVELS = (process.argv[2] ?? "100,1000").split(",").map(Number);
const WINDOW_S = Number(process.argv[3] ?? "60");
const INTERVAL_MS = 5_000;
const SLOTS_PER_ENTRY = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

/**
 * Kill (by pid) every process of the given jobs on this machine (the nodes are local users). By job
 * id, not attempt id: a launch still in flight when the level ends starts attempts not yet recorded.
 */
function killJobs(jobIds: Set<string>): number {
  let killed = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "latin1").split("\0");
      const j = env.find((e) => e.startsWith("TRAINYARD_JOB_ID="));
      if (j && jobIds.has(j.slice("TRAINYARD_JOB_ID=".length))) {
        process.kill(Number(entry), "SIGKILL");
        killed++;
      }
    } catch {
      // ended meanwhile, or not ours to read
    }
  }
  return killed;
}

/** The jobs of the level being run, killed again once its platform (and launcher) is closed. */
const levelJobs = new Set<string>();

async function level(p: Platform, n: number) {
  const infra = p.infra;
  // A cluster may list each sshd endpoint once, with at most 64 GPUs: one cluster per 3 x 64 slots.
  const perCluster = infra.nodes.length * SLOTS_PER_ENTRY;
  const clusters: Array<{ id: Types.ObjectId; name: string }> = [];
  for (let c = 0; c * perCluster < n; c++) {
    const entries = Math.min(infra.nodes.length, Math.ceil((n - c * perCluster) / SLOTS_PER_ENTRY));
    const nodes = infra.nodes.slice(0, entries).map((x, i) => ({ ...x, name: `m${i}` }));
    const min = 40_000 + (n % 7) * 10 + c * 1_000;
    const reg = await p.api<{ id: string; name: string }>("POST", "/v1/clusters", {
      name: `p4-${n}-${c}`,
      nodes: nodes.map((x) => ({
        name: x.name,
        host: x.host,
        port: x.port,
        user: x.user,
        gpus: SLOTS_PER_ENTRY,
        gpuType: "cpu",
        workRoot: x.workRoot,
      })),
      ssh: {
        privateKey: readFileSync(infra.clientKeyPath, "utf8"),
        hostKeys: Object.fromEntries(nodes.map((x) => [x.name, x.hostKeyFingerprint])),
      },
      env: infra.nodeEnv,
      // command jobs take 4 ports per node, unique cluster-wide.
      ports: { min, max: min + 4 * perCluster + 100 },
    });
    if (reg.status !== 201) throw new Error(`cluster: ${reg.status} ${reg.text}`);
    clusters.push({ id: new Types.ObjectId(reg.body.id), name: reg.body.name });
  }
  const clusterId = { $in: clusters.map((c) => c.id) };

  const t0 = performance.now();
  const submit = await load(n, 16, async (i) => {
    const r = await p.api("POST", "/v1/jobs", {
      name: `p4-${i}`,
      framework: "command",
      cluster: clusters[Math.floor(i / perCluster)]!.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["sleep", "3600"],
    });
    if (r.status !== 202) throw new Error(`submit ${r.status}: ${r.text.slice(0, 200)}`);
  });
  const conn = await connectMongo(p.env.MONGO_URL!, p.env.MONGO_DB!);
  const jobs = conn.collection("jobs");
  // The monitor: its own process, at the default interval, with the platform's database and queues.
  const monitor: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "services/monitor/src/main.ts")], {
    cwd: join(REPO_ROOT, "services/monitor"),
    env: { ...process.env, ...p.env, MONITOR_INTERVAL_MS: String(INTERVAL_MS), HEALTH_PORT: "0", LOG_LEVEL: "error" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    let running = 0;
    const deadline = Date.now() + 15 * 60_000;
    while (running < n && Date.now() < deadline) {
      await sleep(2_000);
      running = await jobs.countDocuments({ clusterId, status: "RUNNING" });
      const failed = await jobs.find({ clusterId, status: "FAILED" }, { projection: { failure: 1 } }).toArray();
      if (failed.length) throw new Error(`${failed.length} jobs failed to start: ${JSON.stringify(failed[0]?.failure)}`);
      console.error(`[bench:monitor] ${n}: ${running} running`);
    }
    const startSeconds = round((performance.now() - t0) / 1000);
    if (running < n) throw new Error(`only ${running} of ${n} jobs started in 15 min`);
    // One interval for every attempt to get its first regular check.
    await sleep(INTERVAL_MS * 2);

    const lags: number[] = [];
    let worst = 0;
    const cpu0 = cpuSeconds(monitor.pid!);
    const w0 = Date.now();
    while (Date.now() - w0 < WINDOW_S * 1000) {
      const now = Date.now();
      const docs = await jobs
        .find(
          { clusterId, status: "RUNNING" },
          { projection: { currentAttemptId: 1, "attempts.id": 1, "attempts.nodes.lastSeenAt": 1 } },
        )
        .toArray();
      for (const d of docs) {
        const a = (d.attempts as Array<{ id: string; nodes: Array<{ lastSeenAt?: Date }> }>).find(
          (x) => x.id === d.currentAttemptId,
        );
        const seen = a?.nodes[0]?.lastSeenAt;
        if (!seen) continue;
        const lag = Math.max(0, now - new Date(seen).getTime() - INTERVAL_MS);
        lags.push(lag);
        worst = Math.max(worst, lag);
      }
      await sleep(1_000);
    }
    const cpu = round(((cpuSeconds(monitor.pid!) - cpu0) / ((Date.now() - w0) / 1000)) * 100);
    return {
      attempts: n,
      clusters: clusters.length,
      submitPerSecond: submit.perSecond,
      allRunningAfterSeconds: startSeconds,
      lagP50Ms: round(pct(lags, 0.5)),
      lagP99Ms: round(pct(lags, 0.99)),
      lagMaxMs: round(worst),
      p99LagOverInterval: ratio(pct(lags, 0.99), INTERVAL_MS),
      monitorCpuPercent: cpu,
      load1: load1(),
    };
  } finally {
    monitor.kill("SIGTERM");
    for (const d of await jobs.find({ clusterId }, { projection: { _id: 1 } }).toArray()) levelJobs.add(String(d._id));
    await conn.close();
    console.error(`[bench:monitor] killed ${killJobs(levelJobs)} processes of ${levelJobs.size} jobs`);
  }
}

async function main() {
  const rows: Array<Awaited<ReturnType<typeof level>> | { attempts: number; error: string }> = [];
  for (const n of LEVELS) {
    // A fresh platform per level (its own database and queues); the monitor is started by `level`.
    const p = await startPlatform({
      // Three launchers: scheduling passes are one at a time per replica, so clusters start in parallel.
      launchers: 3,
      monitors: 0,
      env: {
        LOG_LEVEL: "error",
        API_RATE_LIMIT: "1000000",
        MONITOR_INTERVAL_MS: String(INTERVAL_MS),
        LAUNCHER_CONCURRENCY: "16",
      },
    });
    try {
      rows.push(await level(p, n));
    } catch (err) {
      // Growing the load until something breaks: the break is the result.
      rows.push({ attempts: n, error: (err as Error).message.slice(0, 300) });
      console.error(`[bench:monitor] ${n}: ${(err as Error).message}`);
    } finally {
      await p.close();
      // Launches that were still in flight have started by now: nothing of the level may outlive it.
      console.error(`[bench:monitor] killed ${killJobs(levelJobs)} more processes after closing`);
      levelJobs.clear();
    }
  }
  writeResults("monitor", { intervalMs: INTERVAL_MS, windowSeconds: WINDOW_S, rows }, [
    `P4: one monitor replica, interval ${INTERVAL_MS} ms, ${WINDOW_S} s window; lag = time since last check - interval`,
    "",
    "| running attempts | all running after s | lag p50 / p99 / max ms | p99 lag ÷ interval | monitor CPU % (of one core) | load avg |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) =>
      "error" in r
        ? `| ${r.attempts} | broke: ${r.error} | | | | |`
        : `| ${r.attempts} | ${r.allRunningAfterSeconds} | ${r.lagP50Ms} / ${r.lagP99Ms} / ${r.lagMaxMs} | ${r.p99LagOverInterval} | ${r.monitorCpuPercent} | ${r.load1} |`,
    ),
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
