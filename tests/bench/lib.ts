/** Shared helpers of the `pnpm bench` suites: timing, percentiles, results files. */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "@trainyard/testkit";

export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
};
export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
/** How many times slower `x` is than its baseline (2 decimals). */
export const ratio = (x: number, baseline: number): number => round(x / baseline, 2);

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export interface Latency {
  n: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Run `n` calls of `fn`, `concurrency` at a time; per-call latencies and calls per second. */
export async function load(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<Latency> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        lat.push(await timed(() => fn(i)));
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { n, perSecond: round(n / seconds), p50Ms: round(pct(lat, 0.5)), p99Ms: round(pct(lat, 0.99)) };
}

/** The 1-minute load average: the machine is shared, so every result says how busy it was. */
export const load1 = (): number => round(loadavg()[0] ?? 0, 2);

/** Write bench/results/<name>-<date>.json and .md (a markdown table), and print the table. */
export function writeResults(name: string, data: Record<string, unknown>, table: string[]): void {
  const date = new Date().toISOString().slice(0, 10);
  const dir = join(REPO_ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${date}.json`);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), load1AtEnd: load1(), ...data }, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, ".md"), `${table.join("\n")}\n`);
  console.log(table.join("\n"));
  console.log(`\n(results: ${file})`);
}

/** CPU time (user + system, ms) used so far by each matching process: name → pid → ms. */
export type CpuReading = Record<string, Map<number, number>>;

/**
 * CPU time used so far by the processes whose command line matches each pattern (or with one of
 * the given pids), from /proc. The database and Redis are shared by everything on the machine, so
 * a difference over a run is only Trainyard's own when nothing else ran meanwhile.
 */
export function cpuMsByProcess(patterns: Record<string, RegExp | number[]>): CpuReading {
  const out: CpuReading = Object.fromEntries(Object.keys(patterns).map((k) => [k, new Map<number, number>()]));
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let cmd: string;
    let stat: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    for (const [name, p] of Object.entries(patterns)) {
      if (Array.isArray(p) ? p.includes(Number(pid)) : p.test(cmd)) out[name]!.set(Number(pid), ms);
    }
  }
  return out;
}

/**
 * CPU ms each group used between two readings, by the processes alive at the second (all of it for
 * one started in between). A process that ended in between took its time with it: it is not
 * counted here (before, its whole past time was subtracted: PostgreSQL backends that exited made
 * the figure negative), so it lands in the machine's unattributed rest.
 */
export function cpuMsSpent(before: CpuReading, after: CpuReading): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after).map(([name, pids]) => {
      let ms = 0;
      for (const [pid, now] of pids) ms += now - (before[name]?.get(pid) ?? 0);
      return [name, ms];
    }),
  );
}

const CLOCK_TICKS = 100;

/** A histogram's cumulative buckets (upper bound in seconds → count) scraped from a /metrics text. */
export async function scrapeHistogram(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<{ buckets: Array<[number, number]>; count: number; sum: number }> {
  const text = await (await fetch(url)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const lines = text.split("\n").filter((l) => l.startsWith(name) && want.every((w) => l.includes(w)));
  const value = (l: string) => Number(l.slice(l.lastIndexOf(" ") + 1));
  const buckets: Array<[number, number]> = lines
    .filter((l) => l.startsWith(`${name}_bucket`))
    .map((l) => {
      const le = /le="([^"]+)"/.exec(l)![1]!;
      return [le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), value(l)];
    });
  const one = (suffix: string) => value(lines.find((l) => l.startsWith(`${name}_${suffix}`)) ?? " 0");
  return { buckets: buckets.sort((a, b) => a[0] - b[0]), count: one("count"), sum: one("sum") };
}

/** The smallest bucket bound holding quantile `q` of a scraped histogram (an upper bound, seconds). */
export function bucketQuantile(h: { buckets: Array<[number, number]>; count: number }, q: number): number {
  if (!h.count) return Number.NaN;
  return h.buckets.find(([, c]) => c >= q * h.count)?.[0] ?? Number.POSITIVE_INFINITY;
}

/** What a histogram gained between two scrapes (the observations of that window only). */
export function histogramSince(
  before: { buckets: Array<[number, number]>; count: number; sum: number },
  after: { buckets: Array<[number, number]>; count: number; sum: number },
): { buckets: Array<[number, number]>; count: number; sum: number } {
  return {
    buckets: after.buckets.map(([le, c]) => [le, c - (before.buckets.find(([b]) => b === le)?.[1] ?? 0)]),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}
