/**
 * The monitor's probe of one node for every attempt running on it: one SSH round trip and one
 * scan of the node's processes per check, whatever the number of attempts (a probe per attempt
 * scanned /proc once per attempt: O(attempts x processes) on a busy node).
 *
 * The script only reports facts; `attemptProbes` decides, per attempt, exactly what the
 * single-attempt probe (node-protocol.ts, `findProcesses`) decides: a process belongs to the
 * attempt when it is a live member of the wrapper's process group (while that group is provably
 * the wrapper's: its leader runs `<dir>/launch.sh`, or a member carries the attempt id), or when
 * its environment holds exactly `TRAINYARD_ATTEMPT_ID=<attemptId>`.
 *
 * The attempts come on stdin, one `<attemptId> <dir>` per line: data the script reads, never
 * shell text, so no value reaches a shell unquoted and no argument-length limit applies.
 * Everything read from a node file or a process comes back base64-encoded, so no content can
 * fake a marker.
 */
import { type NodeTelemetry, parseTelemetry, telemetryScript } from "./gpu-telemetry";
import { attemptDir, type ProbeResult } from "./node-protocol";
import { shellQuote } from "./shell";

/** One attempt to report on: its id and its directory on this node (see attemptDir). */
export interface NodeProbeTarget {
  attemptId: string;
  dir: string;
}

export interface NodeProbeOptions {
  logTailBytes: number;
  metricsLines: number;
  /** Checkpoint announcements read per attempt (the newest), as the checkpoint bookkeeping needs them. */
  announcementLines: number;
  /** Also sample GPUs (nvidia-smi on this PATH, or the login PATH). */
  telemetry?: { path?: string | undefined };
}

const HEADER = "@@trainyard-node-probe 1";
const ATTEMPT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The attempts as the script's stdin. Ids and directories are checked: one line each, no spaces in ids. */
export function nodeProbeInput(targets: readonly NodeProbeTarget[]): string {
  return targets
    .map(({ attemptId, dir }) => {
      if (!ATTEMPT_ID.test(attemptId)) throw new Error(`invalid attempt id ${JSON.stringify(attemptId)}`);
      if (!dir.startsWith("/") || /[\n\0]/.test(dir) || dir !== dir.trim())
        throw new Error(`attempt directory must be an absolute path on one line: ${JSON.stringify(dir)}`);
      return `${attemptId} ${dir}\n`;
    })
    .join("");
}

const int = (name: string, n: number): number => {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${n}`);
  return n;
};

/**
 * The node probe: `/bin/sh -c <script>`, fed `nodeProbeInput(targets)` on stdin. Order matters as
 * in the single probe: the processes are scanned before the exit codes are read, so a rank that
 * ends in between shows its exit code rather than looking vanished.
 */
export function nodeProbeCommand(opts: NodeProbeOptions): string {
  const tail = int("logTailBytes", opts.logTailBytes);
  const lines = int("metricsLines", opts.metricsLines);
  const announced = Math.max(1, int("announcementLines", opts.announcementLines));
  const b64 = "base64 | tr -d '\\n'";
  const script = `ty_in=$(cat)
ty_all=
echo ${shellQuote(HEADER)}
echo "@@self $$"
# Group leaders named by the attempts' pid files (read before the scan, checked by it).
ty_leaders=
while read -r id d; do
  [ -n "$id" ] || continue
  pg=
  if [ -f "$d/pid" ]; then read -r pg <"$d/pid" || :; fi
  case $pg in "" | *[!0-9]*) ;; *) ty_leaders="$ty_leaders /proc/$pg/cmdline" ;; esac
done <<ty_eof
$ty_in
ty_eof
# One scan: this account's processes, the attempt ids in their environments, the leaders' command lines.
echo "@@ps $(ps -u "$(id -u)" -o pid=,pgid=,stat=,pcpu=,rss= | ${b64})"
echo "@@environ $(grep -zxH -e 'TRAINYARD_ATTEMPT_ID=.*' /proc/[0-9]*/environ 2>/dev/null | ${b64})"
if [ -n "$ty_leaders" ]; then echo "@@leaders $(grep -zH -e '/launch\\.sh$' $ty_leaders 2>/dev/null | ${b64})"; fi
# Per attempt: files only; an empty log or a missing metrics file costs no process.
while read -r id d; do
  [ -n "$id" ] || continue
  echo "@@attempt $id"
  pg=
  if [ -f "$d/pid" ]; then read -r pg <"$d/pid" || :; fi
  case $pg in "" | *[!0-9]*) ;; *) echo "@@pgid $pg" ;; esac
  if [ -f "$d/exit_code" ]; then ec=; read -r ec <"$d/exit_code" || :; echo "@@exit $ec"; fi
  if [ -s "$d/output.log" ]; then
    echo "@@logsize $(wc -c <"$d/output.log")"
    echo "@@logtail $(tail -c ${tail} "$d/output.log" | ${b64})"
  fi
  if [ -s "$d/metrics.jsonl" ]; then
    echo "@@metrics $(tail -n ${lines} "$d/metrics.jsonl" | ${b64})"
    echo "@@announced $(grep -h '"checkpoint"' "$d/metrics.jsonl" | tail -n ${announced} | ${b64})"
  fi
done <<ty_eof
$ty_in
ty_eof
${opts.telemetry ? telemetryScript(opts.telemetry.path) : ""}echo @@end
`;
  return `/bin/sh -c ${shellQuote(script)}`;
}

/** What one node probe saw, before it is split per attempt. */
export interface NodeProbe {
  /** The probe's own shell (never counted as an attempt's process). */
  self?: number;
  /** This account's live processes (zombies left out: they hold nothing). */
  processes: Array<{ pid: number; pgid: number; cpuPct: number; rssKiB: number }>;
  /** pid -> the attempt id in its environment. */
  environ: Map<number, string>;
  /** Group leader pid -> its `.../launch.sh` argument. */
  leaders: Map<number, string[]>;
  attempts: Map<string, AttemptFiles>;
  telemetry?: NodeTelemetry;
}

export interface AttemptFiles {
  pgid?: number;
  exitCode?: number;
  logSize: number;
  logTail: string;
  metrics: Array<Record<string, unknown>>;
  /** Raw `"checkpoint"` lines of metrics.jsonl (the newest), absent when there is no metrics file. */
  announcements?: string[];
}

export class NodeProbeParseError extends Error {
  override name = "NodeProbeParseError";
}

const decode = (b64: string | undefined): string => (b64 ? Buffer.from(b64, "base64").toString("utf8") : "");
const intOf = (v: string | undefined): number | undefined => {
  const s = v?.trim();
  return s !== undefined && /^-?\d+$/.test(s) ? Number(s) : undefined;
};
/** `grep -zH` output: NUL-terminated `<file>:<record>` entries (the file is /proc/<pid>/..., no colon). */
function byPid(b64: string | undefined): Array<{ pid: number; record: string }> {
  const out: Array<{ pid: number; record: string }> = [];
  for (const entry of decode(b64).split("\0")) {
    const m = /^\/proc\/(\d+)\/[a-z]+:/.exec(entry);
    if (m) out.push({ pid: Number(m[1]), record: entry.slice(m[0].length) });
  }
  return out;
}

function parseMetrics(text: string): Array<Record<string, unknown>> {
  const metrics: Array<Record<string, unknown>> = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) metrics.push(v as Record<string, unknown>);
    } catch {
      // A line still being written, or not JSON: the next probe sees it whole, or never.
    }
  }
  return metrics;
}

export function parseNodeProbe(stdout: string): NodeProbe {
  const probe: NodeProbe = { processes: [], environ: new Map(), leaders: new Map(), attempts: new Map() };
  let header = false;
  let end = false;
  let current: AttemptFiles | undefined;
  let telemetry: string | undefined;
  for (const raw of stdout.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === HEADER) header = true;
    else if (line === "@@end") end = true;
    if (!header || end || !line.startsWith("@@")) continue;
    const sp = line.indexOf(" ");
    const key = sp < 0 ? line.slice(2) : line.slice(2, sp);
    const value = sp < 0 ? "" : line.slice(sp + 1);
    switch (key) {
      case "self":
        probe.self = intOf(value);
        break;
      case "ps":
        for (const row of decode(value).split("\n")) {
          const [pid, pgid, stat, cpu, rss] = row.trim().split(/\s+/);
          if (!pid || !/^\d+$/.test(pid) || !pgid || stat?.startsWith("Z")) continue;
          probe.processes.push({ pid: Number(pid), pgid: Number(pgid), cpuPct: Number(cpu) || 0, rssKiB: Number(rss) || 0 });
        }
        break;
      case "environ":
        for (const { pid, record } of byPid(value)) probe.environ.set(pid, record.slice("TRAINYARD_ATTEMPT_ID=".length));
        break;
      case "leaders":
        for (const { pid, record } of byPid(value)) probe.leaders.set(pid, [...(probe.leaders.get(pid) ?? []), record]);
        break;
      case "attempt":
        current = { logSize: 0, logTail: "", metrics: [] };
        probe.attempts.set(value, current);
        break;
      case "pgid":
        if (current && intOf(value) !== undefined) current.pgid = intOf(value);
        break;
      case "exit":
        if (current && intOf(value) !== undefined) current.exitCode = intOf(value);
        break;
      case "logsize":
        if (current) current.logSize = intOf(value) ?? 0;
        break;
      case "logtail":
        if (current) current.logTail = decode(value);
        break;
      case "metrics":
        if (current) current.metrics = parseMetrics(decode(value));
        break;
      case "announced":
        if (current) current.announcements = decode(value).split("\n").filter(Boolean);
        break;
      case "telemetry":
        telemetry = value;
        break;
    }
  }
  // A cut-off probe (dropped connection, killed shell) must not read as "processes gone".
  if (!header || !end) throw new NodeProbeParseError(`incomplete node probe output: ${JSON.stringify(stdout.slice(0, 200))}`);
  if (telemetry !== undefined) probe.telemetry = parseTelemetry(decode(telemetry), undefined);
  return probe;
}

/**
 * Each attempt's ProbeResult, by the single probe's rules (see the file comment). The GPU samples
 * are the node's (the monitor keeps each attempt's own GPUs); CPU and memory are the attempt's
 * processes' own.
 */
export function attemptProbes(node: NodeProbe, targets: readonly NodeProbeTarget[]): Map<string, ProbeResult> {
  const live = new Map(node.processes.map((p) => [p.pid, p]));
  const members = new Map<number, number[]>();
  for (const p of node.processes) members.set(p.pgid, [...(members.get(p.pgid) ?? []), p.pid]);
  // Only processes of this account (those the scan listed), never the probe itself.
  const carrying = new Map<string, number[]>();
  for (const [pid, id] of node.environ) {
    if (pid !== node.self && live.has(pid)) carrying.set(id, [...(carrying.get(id) ?? []), pid]);
  }
  const out = new Map<string, ProbeResult>();
  for (const { attemptId, dir } of targets) {
    const files = node.attempts.get(attemptId);
    if (!files) continue; // not reported: the caller treats it as not probed
    const pg = files.pgid;
    const group = pg !== undefined ? (members.get(pg) ?? []) : [];
    const byEnv = carrying.get(attemptId) ?? [];
    // The pid can be reused once the group is gone: the group counts only while it is provably ours.
    const ours =
      group.length > 0 &&
      ((pg !== undefined && (node.leaders.get(pg) ?? []).includes(`${dir}/launch.sh`)) || byEnv.some((p) => group.includes(p)));
    const all = [...new Set([...byEnv, ...(ours ? group : [])])];
    const procs = all.map((pid) => live.get(pid)!);
    const telemetry: NodeTelemetry | undefined = node.telemetry && {
      ...node.telemetry,
      ...(all.length
        ? {
            proc: {
              cpuPct: Math.round(procs.reduce((s, p) => s + p.cpuPct, 0) * 10) / 10,
              rssMiB: Math.round(procs.reduce((s, p) => s + p.rssKiB, 0) / 1024),
            },
          }
        : {}),
    };
    out.set(attemptId, {
      started: pg !== undefined,
      ...(pg !== undefined ? { pgid: pg } : {}),
      alive: all.length > 0,
      ...(files.exitCode !== undefined ? { exitCode: files.exitCode } : {}),
      logSize: files.logSize,
      logTail: files.logTail,
      metrics: files.metrics,
      // No metrics file: nothing announced (the checkpoint bookkeeping need not ask again).
      announcements: files.announcements ?? [],
      ...(telemetry ? { telemetry } : {}),
    });
  }
  return out;
}

/** A node probe target for an attempt of a job, from the node's work root. */
export const nodeProbeTarget = (workRoot: string, jobId: string, attemptId: string): NodeProbeTarget => ({
  attemptId,
  dir: attemptDir(workRoot, jobId, attemptId),
});
