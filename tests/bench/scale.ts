/**
 * `pnpm bench:scale` (part of `pnpm bench`): the data path with a realistic history (issue 9 P1b, P6).
 *   - P1b: submit p50/p99 (one at a time and 16 at a time) and GET /v1/jobs first page with filters
 *     p99, on an empty database (the baseline), then with STORED jobs stored and QUEUED of them queued
 *     behind a full cluster (seeded through the repository, for speed; submits go through the API).
 *   - P6: the cost service's /metrics scrape time and size with 0 (baseline) and ACTIVE running jobs.
 * Usage: pnpm bench:scale [stored=10000] [queued=1000] [active=1000]
 */
import { jobSpecSchema, SecretBox } from "@trainyard/common";
import { connectMongo, createRepos, RedisDocumentLocks } from "@trainyard/db";
import { Redis } from "ioredis";
import { Types } from "mongoose";
import { registerCluster, startPlatform } from "../harness";
import { type Latency, load, load1, pct, ratio, round, timed, writeResults } from "./lib";

const [STORED, QUEUED, ACTIVE] = [process.argv[2] ?? "10000", process.argv[3] ?? "1000", process.argv[4] ?? "1000"].map(
  Number,
) as [number, number, number];

async function main() {
  // No launcher or monitor: the queued jobs stay queued, and submits are measured alone.
  const p = await startPlatform({
    launchers: 0,
    monitors: 0,
    env: { LOG_LEVEL: "error", API_RATE_LIMIT: "1000000", COST_METRICS_MAX_AGE_MS: "15000" },
  });
  const redis = new Redis(p.infra.redisUrl);
  const conn = await connectMongo(p.env.MONGO_URL!, p.env.MONGO_DB!);
  const repos = createRepos(
    conn,
    new SecretBox(p.env.TRAINYARD_SECRET_KEY!),
    new RedisDocumentLocks(redis, p.env.TRAINYARD_QUEUE_PREFIX!),
  );
  try {
    const cluster = await registerCluster(p, { nodes: ["n1"], gpus: 1 });
    const team = ((await p.api<{ team: string }>("GET", "/v1/me")).body as { team: string }).team;
    const spec = (i: number, project = "bench") => ({
      name: `s-${i}`,
      project,
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["sleep", "1"],
    });
    let n = 0;
    const submit = async () => {
      const res = await p.api("POST", "/v1/jobs", spec(n++));
      if (res.status !== 202) throw new Error(`submit ${res.status}: ${res.text.slice(0, 200)}`);
    };
    // The first page with filters (the newest jobs match), without (the team's whole history), and
    // of a status only the older history has (none of it on the empty database).
    const listPaths = [
      "/v1/jobs?limit=20&status=QUEUED&project=bench",
      "/v1/jobs?limit=20",
      "/v1/jobs?limit=20&status=SUCCEEDED",
    ];
    // At most 200 samples or 60 s each.
    const list = async (listPath: string, samples = 200, budgetMs = 60_000) => {
      const lat: number[] = [];
      const until = performance.now() + budgetMs;
      for (let i = 0; i < samples && (i < 5 || performance.now() < until); i++)
        lat.push(
          await timed(async () => {
            const r = await p.api("GET", listPath);
            if (r.status !== 200) throw new Error(`list ${r.status}`);
          }),
        );
      return { samples: lat.length, p50Ms: round(pct(lat, 0.5)), p99Ms: round(pct(lat, 0.99)) };
    };
    const scrapeUrl = p.metricsUrls.cost![0]!;
    const ageOf = (body: string) => Number(/^trainyard_cost_metrics_age_seconds\{[^}]*\} (\S+)$/m.exec(body)?.[1] ?? Number.NaN);
    // As Prometheus would scrape: one every 2 s for a minute, so the 15 s snapshot is re-read
    // (and waited for, at most 1 s) a few times among the samples.
    const scrape = async (samples = 30, everyMs = 2_000) => {
      const lat: number[] = [];
      let bytes = 0;
      let maxAgeSeconds = 0;
      for (let i = 0; i < samples; i++) {
        const t = performance.now();
        lat.push(
          await timed(async () => {
            const body = await (await fetch(scrapeUrl)).text();
            bytes = body.length;
            maxAgeSeconds = Math.max(maxAgeSeconds, ageOf(body));
          }),
        );
        await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (performance.now() - t))));
      }
      return { p50Ms: round(pct(lat, 0.5)), p99Ms: round(pct(lat, 0.99)), bytes, maxAgeSeconds: round(maxAgeSeconds) };
    };
    /** Time until a scrape shows `series` per-job cost series of the project (the snapshot caught up). */
    const untilScrapeShows = async (project: string, series: number) => {
      const t = performance.now();
      const pattern = new RegExp(`^trainyard_job_cost_usd\\{[^}]*project="${project}"`, "gm");
      while (((await (await fetch(scrapeUrl)).text()).match(pattern)?.length ?? 0) < series) {
        if (performance.now() - t > 300_000) throw new Error(`the cost metrics did not show ${series} active jobs in 5 min`);
        await new Promise((r) => setTimeout(r, 500));
      }
      return round(performance.now() - t);
    };
    const measure = async () => ({
      load1: load1(),
      serial: await load(100, 1, submit),
      c16: await load(400, 16, submit),
      lists: await (async () => {
        const out: Record<string, Awaited<ReturnType<typeof list>>> = {};
        for (const path of listPaths) out[path] = await list(path);
        return out;
      })(),
    });

    console.error("[bench:scale] empty database");
    const empty = await measure();
    const scrapeEmpty = await scrape();

    console.error(`[bench:scale] seeding ${STORED} jobs (${QUEUED} queued)`);
    const t0 = performance.now();
    const ids: Types.ObjectId[] = [];
    const base = jobSpecSchema.parse(spec(0));
    for (let i = 0; i < STORED; i += 50) {
      const batch = Array.from({ length: Math.min(50, STORED - i) }, async (_, k) => {
        const n = i + k;
        // The P6 jobs get a project of their own, so one equality update (pushed down) finds them.
        const project = n >= QUEUED && n < QUEUED + ACTIVE ? "p6-active" : n % 10 === 0 ? "bench" : `p${n % 7}`;
        const s = { ...base, name: `seed-${n}`, project };
        const { job } = await repos.jobs.create({
          team,
          spec: s,
          clusterId: new Types.ObjectId(cluster.id),
          clusterName: cluster.name,
        });
        return job._id;
      });
      ids.push(...(await Promise.all(batch)));
    }
    // QUEUED of them wait (behind the cluster's one slot, with no launcher); the rest are history.
    const queued = ids.slice(0, QUEUED);
    for (let i = 0; i < queued.length; i += 50) await Promise.all(queued.slice(i, i + 50).map((id) => repos.jobs.queue(id)));
    // Equality filters only: FerretDB v1 evaluates an `_id: {$in: [9,000 ids]}` against every
    // document itself, which stalled it for minutes.
    await conn.collection("jobs").updateMany({ team, status: "PENDING" }, { $set: { status: "SUCCEEDED", endedAt: new Date() } });
    // That bulk update changed 9,000 rows at once: PostgreSQL plans with stale statistics until
    // autoanalyze runs (up to a minute; a SUCCEEDED page took ~700 ms instead of ~70 meanwhile).
    // `compact` is FerretDB's VACUUM ANALYZE: measure the steady state, as jobs that end one by one see.
    await conn.db!.command({ compact: "jobs" });
    const seedSeconds = round((performance.now() - t0) / 1000);

    console.error("[bench:scale] loaded database");
    const loaded = await measure();

    // P6: ACTIVE of the history made RUNNING with a price, so each has its per-job series.
    await conn.collection("jobs").updateMany(
      { team, project: "p6-active" },
      {
        $set: {
          status: "RUNNING",
          cost: { usd: 1.5, gpuHours: 0.5, burnUsdPerHour: 3, lines: [], final: false, updatedAt: new Date() },
          progress: { step: 10, totalSteps: 100, ratio: 0.1, updatedAt: new Date() },
        },
        $unset: { endedAt: 1 },
      },
    );
    const activeShownAfterMs = await untilScrapeShows("p6-active", ACTIVE);
    const scrapeActive = await scrape();

    const row = (name: string, x: Latency, b: Latency) =>
      `| ${name} | ${b.p50Ms} / ${b.p99Ms} | ${x.p50Ms} / ${x.p99Ms} | ${ratio(x.p50Ms, b.p50Ms)} / ${ratio(x.p99Ms, b.p99Ms)} | ${b.perSecond} → ${x.perSecond} |`;
    writeResults(
      "scale",
      {
        stored: STORED,
        queued: QUEUED,
        active: ACTIVE,
        seedSeconds,
        empty,
        loaded,
        scrapeEmpty,
        scrapeActive,
        activeShownAfterMs,
      },
      [
        `P1b: ${STORED} jobs stored, ${QUEUED} queued (seeded in ${seedSeconds} s), vs an empty database; load average ${empty.load1} → ${loaded.load1}`,
        "",
        "| measure | empty p50 / p99 ms | loaded p50 / p99 ms | × empty (p50 / p99) | per second |",
        "|---|---|---|---|---|",
        row("submit, one at a time", loaded.serial, empty.serial),
        row("submit, 16 at a time", loaded.c16, empty.c16),
        ...listPaths.map((path) => {
          const [e, l] = [empty.lists[path]!, loaded.lists[path]!];
          return `| GET ${path} | ${e.p50Ms} / ${e.p99Ms} | ${l.p50Ms} / ${l.p99Ms} | ${ratio(l.p50Ms, e.p50Ms)} / ${ratio(l.p99Ms, e.p99Ms)} | |`;
        }),
        "",
        `P6: cost service /metrics with ${ACTIVE} active jobs vs none (a scrape every 2 s for a minute; snapshot re-read at most every 15 s). The ${ACTIVE} active jobs showed ${round(activeShownAfterMs / 1000)} s after they were stored.`,
        "",
        "| active jobs | scrape p50 / p99 ms | size bytes | oldest snapshot served s |",
        "|---|---|---|---|",
        `| 0 | ${scrapeEmpty.p50Ms} / ${scrapeEmpty.p99Ms} | ${scrapeEmpty.bytes} | ${scrapeEmpty.maxAgeSeconds} |`,
        `| ${ACTIVE} | ${scrapeActive.p50Ms} / ${scrapeActive.p99Ms} (× ${ratio(scrapeActive.p99Ms, scrapeEmpty.p99Ms)}) | ${scrapeActive.bytes} (× ${ratio(scrapeActive.bytes, scrapeEmpty.bytes)}) | ${scrapeActive.maxAgeSeconds} |`,
      ],
    );
  } finally {
    await conn.close();
    redis.disconnect();
    await p.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
