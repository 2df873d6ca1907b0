/**
 * `pnpm bench:monitor` (part of `pnpm bench`): one monitor replica keeping N running attempts
 * checked (issue 9 P4). The platform's launcher starts N `sleep` jobs (1 node x 1 slot each) on
 * the 3 local sshd nodes (one cluster per 3 x 64 slots: a cluster lists each endpoint once); one
 * monitor runs as its own process (so its CPU is its own) at the product's default interval and
 * sweep. Over WINDOW seconds the bench measures two things:
 * - check lag, from the monitor's own histogram (trainyard_monitor_check_lag_seconds: time since
 *   the previous check of an attempt minus the interval; bucket bounds, so an upper bound);
 * - detection: KILLS ranks (`sleep`) killed at random moments, each timed from the kill to the
 *   monitor's stop request for its job (the earliest a user or the launcher can act on it).
 * The baseline is the interval: p99 lag / interval < 1 is the goal. Every process the bench
 * started on the nodes is killed at the end, by pid.
 * The nodes are the integration tests' nodes, and those tests freeze and crash them and kill every
 * node process after each file: run it holding their lock too (flock /tmp/trainyard-int.lock).
 * Usage: pnpm bench:monitor [levels=100,1000] [window seconds=60]   (BENCH_MONITOR_KILLS, default 20)
 */
import { readdirSync, readFileSync } from "node:fs";
import { connectMongo } from "@trainyard/db";
import { Types } from "mongoose";
import { type Platform, startPlatform, startServiceProcess } from "../harness";
import {
  bucketQuantile,
  cpuMsByProcess,
  cpuMsSpent,
  histogramSince,
  load,
  load1,
  pct,
  ratio,
  round,
  scrapeHistogram,
  writeResults,
} from "./lib";

const LEVELS = (process.argv[2] ?? "100,1000").split(",").map(Number);
const WINDOW_S = Number(process.argv[3] ?? "60");
const INTERVAL_MS = 5_000;
const SLOTS_PER_ENTRY = 64;
const KILLS = Number(process.env.BENCH_MONITOR_KILLS ?? "20");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU ms the whole machine was busy so far (all cores), from /proc/stat. */
function machineBusyMs(): number {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const t = ticks.map(Number);
  const idle = (t[3] ?? 0) + (t[4] ?? 0);
  return ((t.slice(0, 8).reduce((a, b) => a + b, 0) - idle) * 1000) / 100;
}

/**
 * Kill (by pid) the processes of the given jobs on this machine (the nodes are local users), all of
 * them or only those whose command line matches. By job id, not attempt id: a launch still in
 * flight when the level ends starts attempts not yet recorded.
 */
function killJobs(jobIds: Set<string>, only?: RegExp): number {
  let killed = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "latin1").split("\0");
      const j = env.find((e) => e.startsWith("TRAINYARD_JOB_ID="));
      if (!j || !jobIds.has(j.slice("TRAINYARD_JOB_ID=".length))) continue;
      if (only && !only.test(readFileSync(`/proc/${entry}/cmdline`, "latin1").replaceAll("\0", " "))) continue;
      process.kill(Number(entry), "SIGKILL");
      killed++;
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
    // Below the ephemeral range (see testPortRange); `sleep` binds none, but a real job would.
    const min = 20_000 + c * 1_000;
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
  // The monitor: its own process, at the default interval and sweep, with the platform's database and queues.
  const monitor = await startServiceProcess("monitor", {
    ...p.env,
    MONITOR_INTERVAL_MS: String(INTERVAL_MS),
    RECONCILE_INTERVAL_MS: "30000",
  });
  const metricsUrl = `http://127.0.0.1:${monitor.port}/metrics`;
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
    // Two intervals for every attempt to get its first regular checks.
    await sleep(INTERVAL_MS * 2);

    const lag0 = await scrapeHistogram(metricsUrl, "trainyard_monitor_check_lag_seconds");
    const probe0 = await scrapeHistogram(metricsUrl, "trainyard_monitor_cluster_check_seconds", { phase: "probe" });
    const total0 = await scrapeHistogram(metricsUrl, "trainyard_monitor_cluster_check_seconds", { phase: "total" });
    // Where the machine's CPU goes during the window (% of one core each): the nodes' sshd and
    // probes, the database, Redis, this process (API, launchers, cost, alerting) and the monitor.
    const processes = {
      monitor: [monitor.child.pid!],
      platform: [process.pid],
      ferretdb: /\/ferretdb( |$)/,
      postgres: /^postgres/,
      redis: /^redis-server/,
      sshdAndProbes: /^sshd: ty|^\/bin\/sh -c|^ps |^grep /,
    };
    const byProcess0 = cpuMsByProcess(processes);
    const busy0 = machineBusyMs();
    const w0 = Date.now();
    // Ranks killed at random moments of the window (one job each), timed to the monitor's stop request.
    const ids = (await jobs.find({ clusterId, status: "RUNNING" }, { projection: { _id: 1 } }).toArray()).map((d) =>
      String(d._id),
    );
    const victims = ids.sort(() => Math.random() - 0.5).slice(0, Math.min(KILLS, ids.length));
    const killedAt = new Map<string, number>();
    const detected: number[] = [];
    let next = 0;
    while (Date.now() - w0 < WINDOW_S * 1000) {
      // Kills spread over the first 3/4 of the window, so the last one has time to be seen.
      while (next < victims.length && Date.now() - w0 >= (next * WINDOW_S * 750) / victims.length) {
        const id = victims[next++]!;
        if (killJobs(new Set([id]), /^sleep /)) killedAt.set(id, Date.now());
      }
      // One lookup by _id per job still unseen (FerretDB pushes _id equality down; an $in it would scan).
      for (const [id, at] of killedAt) {
        const d = await jobs.findOne({ _id: new Types.ObjectId(id) }, { projection: { "stopRequest.requestedAt": 1 } });
        if (!d?.stopRequest) continue;
        detected.push(new Date(d.stopRequest.requestedAt).getTime() - at);
        killedAt.delete(id);
      }
      await sleep(250);
    }
    const spent = cpuMsSpent(byProcess0, cpuMsByProcess(processes));
    const windowMs = Date.now() - w0;
    const cpuPercentByProcess: Record<string, number> = Object.fromEntries(
      Object.keys(processes).map((k) => [k, round((spent[k]! / windowMs) * 100)]),
    );
    // Short-lived processes (each probe's shell, ps, grep) are gone by now: counted in the rest.
    const named = Object.values(cpuPercentByProcess).reduce((a, b) => a + b, 0);
    cpuPercentByProcess.machine = round(((machineBusyMs() - busy0) / windowMs) * 100);
    cpuPercentByProcess.rest = round(cpuPercentByProcess.machine - named);
    const lag = histogramSince(lag0, await scrapeHistogram(metricsUrl, "trainyard_monitor_check_lag_seconds"));
    const probe = histogramSince(
      probe0,
      await scrapeHistogram(metricsUrl, "trainyard_monitor_cluster_check_seconds", { phase: "probe" }),
    );
    const total = histogramSince(
      total0,
      await scrapeHistogram(metricsUrl, "trainyard_monitor_cluster_check_seconds", { phase: "total" }),
    );
    const lagP99Ms = bucketQuantile(lag, 0.99) * 1000;
    return {
      attempts: n,
      clusters: clusters.length,
      submitPerSecond: submit.perSecond,
      allRunningAfterSeconds: startSeconds,
      checks: lag.count,
      lagMeanMs: round((lag.sum / Math.max(1, lag.count)) * 1000),
      lagP50AtMostMs: bucketQuantile(lag, 0.5) * 1000,
      lagP99AtMostMs: lagP99Ms,
      p99LagOverInterval: ratio(lagP99Ms, INTERVAL_MS),
      clusterProbeP99AtMostS: bucketQuantile(probe, 0.99),
      clusterCheckP99AtMostS: bucketQuantile(total, 0.99),
      kills: victims.length,
      missedKills: killedAt.size,
      detectP50Ms: round(pct(detected, 0.5)),
      detectP99Ms: round(pct(detected, 0.99)),
      detectMaxMs: round(Math.max(...detected)),
      monitorCpuPercent: cpuPercentByProcess.monitor!,
      cpuPercentByProcess,
      load1: load1(),
    };
  } finally {
    monitor.child.kill("SIGTERM");
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
        // The product's sweep (the harness's 2 s is for tests): three launchers sweeping every 2 s
        // read every running job 1.5 times a second and were most of FerretDB's load in the window.
        RECONCILE_INTERVAL_MS: "30000",
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
  // The monitor process takes MONITOR_STATUS_WRITE_INTERVALS from this environment when set.
  const statusWriteIntervals = Number(process.env.MONITOR_STATUS_WRITE_INTERVALS ?? "3");
  writeResults("monitor", { intervalMs: INTERVAL_MS, statusWriteIntervals, windowSeconds: WINDOW_S, kills: KILLS, rows }, [
    `P4: one monitor replica, interval ${INTERVAL_MS} ms, status written every ${statusWriteIntervals} intervals, sweep 30 s, ${WINDOW_S} s window. Lag = time since an attempt's previous check - interval (the monitor's histogram: bucket bounds, "≤"). Detection = rank killed → stop request.`,
    "",
    "| running attempts | all running after s | lag mean / p50 ≤ / p99 ≤ ms | p99 lag ÷ interval | cluster probe / check p99 ≤ s | detection p50 / p99 / max ms (missed of kills) | monitor CPU % (of one core) | CPU % by process | load avg |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      "error" in r
        ? `| ${r.attempts} | broke: ${r.error} | | | | | | | |`
        : `| ${r.attempts} | ${r.allRunningAfterSeconds} | ${r.lagMeanMs} / ${r.lagP50AtMostMs} / ${r.lagP99AtMostMs} | ${r.p99LagOverInterval} | ${r.clusterProbeP99AtMostS} / ${r.clusterCheckP99AtMostS} | ${r.detectP50Ms} / ${r.detectP99Ms} / ${r.detectMaxMs} (${r.missedKills} of ${r.kills}) | ${r.monitorCpuPercent} | ${Object.entries(
            r.cpuPercentByProcess,
          )
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")} | ${r.load1} |`,
    ),
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
