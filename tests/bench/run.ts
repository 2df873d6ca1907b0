/**
 * `pnpm bench`: the submit path and the queue at growing load, on the local infrastructure
 * (scripts/infra/up.sh must have run). Every figure is also given as a ratio to a baseline measured
 * in the same run, so a noisy machine compares with itself:
 *   - raw BullMQ `add` (what the queue alone costs) for submit throughput,
 *   - GET /v1/jobs?limit=1 on an empty database for list latency.
 * The API under test runs as its own process, as deployed (the load generator here does not share
 * its event loop); API_CONFIG_CACHE_MS may be set in the environment to compare.
 * Levels: 100 jobs (10× the demo's one job, ten times over) and 1,000 (10× that). Jobs stay QUEUED
 * behind a cluster whose single slot is held, so nothing runs; the `schedule` queue depth shows the
 * messages the backlog costs. Writes bench/results/submit-<date>.json and prints a markdown table.
 * Usage: pnpm bench [levels, e.g. 100,1000]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "@trainyard/testkit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { apiClient, type Platform, registerCluster, startPlatform, startServiceProcess } from "../harness";
import { cpuMsByProcess, cpuMsSpent, load, pct, round, timed } from "./lib";

const levels = (process.argv[2] ?? "100,1000").split(",").map(Number);
const CONCURRENCY = 16;

async function bullmqBaseline(redisUrl: string, n: number) {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const q = new Queue(`bench-baseline-${process.pid}`, { connection: redis });
  const r = await load(n, CONCURRENCY, async (i) => {
    await q.add("x", { jobId: `${i}`.padStart(24, "0") });
  });
  await q.obliterate({ force: true });
  await q.close();
  redis.disconnect();
  return r;
}

async function listLatency(api: Platform["api"], samples = 50) {
  const lat: number[] = [];
  for (let i = 0; i < samples; i++) lat.push(await timed(() => api("GET", "/v1/jobs?limit=1")));
  return { p50Ms: round(pct(lat, 0.5)), p99Ms: round(pct(lat, 0.99)) };
}

async function main() {
  // No launcher: submits are measured alone, and the backlog's scheduling messages stay countable.
  const p = await startPlatform({ launchers: 0, monitors: 0, env: { LOG_LEVEL: "warn", API_RATE_LIMIT: "1000000" } });
  const redis = new Redis(p.infra.redisUrl, { maxRetriesPerRequest: null });
  const prefix = p.env.TRAINYARD_QUEUE_PREFIX!;
  const rows: Array<Record<string, unknown>> = [];
  // API replicas (BENCH_API_REPLICAS, default 1), each its own process; requests go round robin.
  const servers = await Promise.all(
    Array.from({ length: Number(process.env.BENCH_API_REPLICAS ?? 1) }, () =>
      startServiceProcess("api", {
        ...p.env,
        ...(process.env.API_CONFIG_CACHE_MS ? { API_CONFIG_CACHE_MS: process.env.API_CONFIG_CACHE_MS } : {}),
      }),
    ),
  );
  const clients = servers.map((s) => apiClient(`http://127.0.0.1:${s.port}`, p.token));
  let turn = 0;
  const api: Platform["api"] = (...args) => clients[turn++ % clients.length]!(...args);
  const processes = {
    api: servers.map((s) => s.child.pid!),
    ferretdb: /\/ferretdb( |$)/,
    postgres: /^postgres/,
    redis: /^redis-server/,
  };
  try {
    const cluster = await registerCluster(p, { nodes: ["n1"], gpus: 1 });
    const spec = (i: number) => ({
      name: `bench-${i}`,
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["sleep", "1"],
    });
    const emptyList = await listLatency(api);
    let submitted = 0;
    for (const n of levels) {
      const baseline = await bullmqBaseline(p.infra.redisUrl, n);
      const submit = async (i: number) => {
        const res = await api("POST", "/v1/jobs", spec(submitted + i));
        if (res.status !== 202) throw new Error(`submit ${res.status}: ${res.text.slice(0, 200)}`);
      };
      const serial = await load(Math.min(n, 200), 1, submit);
      submitted += Math.min(n, 200);
      const cpuBefore = cpuMsByProcess(processes);
      const parallel = await load(n, CONCURRENCY, submit);
      const spent = cpuMsSpent(cpuBefore, cpuMsByProcess(processes));
      submitted += n;
      // Where a submit's time goes: CPU ms per submit of each process during the concurrent run.
      const cpuMsPerSubmit = Object.fromEntries(Object.keys(processes).map((k) => [k, round(spent[k]! / n, 2)]));
      const list = await listLatency(api);
      const schedule = new Queue("schedule", { connection: redis, prefix });
      const counts = await schedule.getJobCounts("waiting", "delayed", "active", "completed", "failed");
      await schedule.close();
      rows.push({
        level: n,
        storedJobs: submitted,
        bullmqAddPerSecond: baseline.perSecond,
        submitSerial: { ...serial, ratioToBullmq: round(baseline.perSecond / serial.perSecond) },
        submit16: { ...parallel, ratioToBullmq: round(baseline.perSecond / parallel.perSecond), cpuMsPerSubmit },
        listLimit1: { ...list, ratioToEmpty: round(list.p50Ms / emptyList.p50Ms, 2) },
        scheduleQueue: counts,
      });
      console.error(`[bench] level ${n} done`);
    }
  } finally {
    for (const s of servers) {
      s.child.kill("SIGTERM");
      await new Promise((r) => s.child.once("exit", r));
    }
    redis.disconnect();
    await p.close();
  }

  const date = new Date().toISOString().slice(0, 10);
  const dir = join(REPO_ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `submit-${date}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), concurrency: CONCURRENCY, apiReplicas: servers.length, rows }, null, 2)}\n`,
  );
  const lines = [
    "| jobs | stored | BullMQ add/s | submit 1-at-a-time /s (p50, p99 ms) | ×slower than BullMQ | submit ×16 /s (p50, p99 ms) | ×slower | CPU ms per submit ×16: api / ferretdb / postgres / redis | list limit=1 p50/p99 ms | ×empty | schedule msgs (waiting+delayed+completed) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => {
      const s = r.submitSerial as { perSecond: number; p50Ms: number; p99Ms: number; ratioToBullmq: number };
      const c = r.submit16 as typeof s & { cpuMsPerSubmit: Record<string, number> };
      const cpu = c.cpuMsPerSubmit;
      const l = r.listLimit1 as { p50Ms: number; p99Ms: number; ratioToEmpty: number };
      const q = r.scheduleQueue as Record<string, number>;
      return `| ${r.level} | ${r.storedJobs} | ${r.bullmqAddPerSecond} | ${s.perSecond} (${s.p50Ms}, ${s.p99Ms}) | ${s.ratioToBullmq} | ${c.perSecond} (${c.p50Ms}, ${c.p99Ms}) | ${c.ratioToBullmq} | ${cpu.api} / ${cpu.ferretdb} / ${cpu.postgres} / ${cpu.redis} | ${l.p50Ms}/${l.p99Ms} | ${l.ratioToEmpty} | ${(q.waiting ?? 0) + (q.delayed ?? 0) + (q.completed ?? 0)} |`;
    }),
  ];
  writeFileSync(file.replace(/\.json$/, ".md"), `${lines.join("\n")}\n`);
  console.log(lines.join("\n"));
  console.log(`\n(results: ${file})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
