/**
 * What lives in an attempt directory on a node, and the shell commands that start, watch and stop
 * it. Everything here is generated POSIX sh text; every interpolated value goes through shellQuote.
 *
 * Attempt directory (`<workRoot>/jobs/<jobId>/<attemptId>`):
 *   launch.sh      the wrapper below, started detached with `setsid -f`
 *   env            `export KEY='value'` lines, sourced by launch.sh
 *   pid            the wrapper's pid = its process group id (written once, atomically)
 *   output.log     the program's stdout and stderr, appended
 *   exit_code      the program's exit status, written atomically when it ends
 *   metrics.jsonl  appended by the training script through $TRAINYARD_METRICS_FILE
 *
 * A process belongs to the attempt when it is in the wrapper's process group, or when its initial
 * environment holds exactly `TRAINYARD_ATTEMPT_ID=<attemptId>` (that catches processes that left
 * the group with setsid). Remote commands run under `/bin/sh -c` so that whatever login shell the
 * node account has, the same dash/POSIX semantics the tests exercise apply.
 */
import { type NodeTelemetry, parseTelemetry, telemetryScript } from "./gpu-telemetry";
import { shellJoin, shellQuote } from "./shell";

/** Keys the env file may define; checked again here although the API validated them already. */
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Attempt ids end up in grep patterns and /proc matches; keep them to plain names. */
const ATTEMPT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Exit status the wrapper writes when it could not run the program at all (docker run uses 125 alike). */
export const WRAPPER_FAILURE_EXIT_CODE = 125;

export const ATTEMPT_FILES = {
  launch: "launch.sh",
  env: "env",
  pid: "pid",
  exitCode: "exit_code",
  log: "output.log",
  metrics: "metrics.jsonl",
} as const;

/** One path segment of a directory we build: a plain name, never '.', '..' or a '/'. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `<workRoot>/jobs/<jobId>`: a job's attempts and its default checkpoint directory live here. */
export function jobDir(workRoot: string, jobId: string): string {
  if (!SEGMENT.test(jobId)) throw new Error(`invalid job id ${JSON.stringify(jobId)}`);
  const root = normalizeDir(workRoot);
  return `${root === "/" ? "" : root}/jobs/${jobId}`;
}

/** `<workRoot>/jobs/<jobId>/<attemptId>` — the one place this layout is spelled out. */
export function attemptDir(workRoot: string, jobId: string, attemptId: string): string {
  return `${jobDir(workRoot, jobId)}/${checkAttemptId(attemptId)}`;
}

/** Absolute, no trailing slash: probe/stop match `<dir>/launch.sh` literally against /proc. */
function normalizeDir(dir: string): string {
  if (!dir.startsWith("/") || /[\n\0]/.test(dir))
    throw new Error(`attempt directory must be an absolute path without newlines: ${JSON.stringify(dir)}`);
  const d = dir.replace(/\/+$/, "");
  return d === "" ? "/" : d;
}

function checkAttemptId(attemptId: string): string {
  if (!ATTEMPT_ID.test(attemptId)) throw new Error(`invalid attempt id ${JSON.stringify(attemptId)}`);
  return attemptId;
}

function nonNegativeInt(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${n}`);
  return n;
}

/** Wraps a multi-line script as one `/bin/sh -c '<script>'` command line. */
function sh(script: string): string {
  return `/bin/sh -c ${shellQuote(script)}`;
}

const basename = (dir: string) => dir.slice(dir.lastIndexOf("/") + 1);

// ---------------------------------------------------------------------------------------------
// Files

/** The env file: one `export KEY='value'` per line, keys sorted so the file is stable. */
export function renderEnvFile(env: Record<string, string>): string {
  const lines = ["# Trainyard: environment of this attempt (generated). launch.sh sources it with set -a."];
  for (const key of Object.keys(env).sort()) {
    if (!ENV_KEY.test(key)) throw new Error(`invalid environment variable name ${JSON.stringify(key)}`);
    const value = env[key];
    if (typeof value !== "string") throw new Error(`environment variable ${key} must be a string`);
    lines.push(`export ${key}=${shellQuote(value)}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The wrapper `setsid -f /bin/sh <dir>/launch.sh` runs. It never interpolates a user value except
 * through shellQuote, and defines no variable that the env file could later change under it.
 */
export function renderLaunchScript(plan: {
  dir: string;
  workdir: string;
  argv: readonly string[];
  /** Directory put in front of PATH for the program (e.g. the attempt's ssh shim for horovodrun). */
  pathPrepend?: string;
}): string {
  if (plan.argv.length === 0) throw new Error("argv must not be empty");
  const dir = normalizeDir(plan.dir);
  const failed = WRAPPER_FAILURE_EXIT_CODE;
  const path = plan.pathPrepend ? `PATH=${shellQuote(normalizeDir(plan.pathPrepend))}:"$PATH"\nexport PATH\n` : "";
  return `#!/bin/sh
# Trainyard attempt wrapper (generated). Started detached as:
#   setsid -f /bin/sh ${shellQuote(`${dir}/launch.sh`)}
# pid: this shell's pid, which setsid made the process group id that stop signals.
# output.log: the program's stdout and stderr. exit_code: its exit status.
cd ${shellQuote(dir)} || exit ${failed}
exec </dev/null >>output.log 2>&1

# Never run outside a group of its own: stop signals the whole group named in pid.
read -r ty_stat </proc/$$/stat
ty_stat=\${ty_stat##*) }
set -- $ty_stat
if [ "$3" != "$$" ]; then
  echo "trainyard: launch.sh must be started with setsid -f (pid $$, process group $3); not starting"
  exit ${failed}
fi

ty_finish() {
  # Publish the status atomically; mv through the default PATH, whatever env set PATH to.
  cd ${shellQuote(dir)} && printf '%s\\n' "$1" >exit_code.tmp && command -p mv -f exit_code.tmp exit_code
  exit "$1"
}

# Publish pid atomically. ln refuses an existing pid, so a second start of this attempt stops
# here instead of running the program twice; mv covers filesystems without hard links.
printf '%s\\n' "$$" >pid.tmp.$$ || exit ${failed}
if ln pid.tmp.$$ pid 2>/dev/null || { [ ! -e pid ] && mv -f pid.tmp.$$ pid; }; then
  rm -f pid.tmp.$$
else
  rm -f pid.tmp.$$
  echo "trainyard: this attempt is already started (pid $(cat pid 2>/dev/null)); duplicate start exits"
  exit 0
fi

# TERM/INT/HUP reach the program through the process group; this shell outlives it to record
# the status. A stop that lands before the program starts cancels the start.
ty_stop=
trap 'ty_stop=1' TERM INT HUP

if [ ! -r env ]; then echo "trainyard: env file missing"; ty_finish ${failed}; fi
set -a
. ./env
set +a
${path}cd ${shellQuote(plan.workdir)} || { echo "trainyard: cannot cd to workdir"; ty_finish ${failed}; }
if [ -n "$ty_stop" ]; then echo "trainyard: stopped before start"; ty_finish 143; fi

${shellJoin(plan.argv)}
ty_finish $?
`;
}

/** The per-node rank wrapper of Horovod/MPI jobs; the head's launcher runs `/bin/sh <dir>/rank.sh` per rank. */
export const RANK_SCRIPT = "rank.sh";

/**
 * rank.sh: what the head node's horovodrun/mpirun runs (over SSH) for each rank on this node. It
 * gives the rank this node's env file (so TRAINYARD_NODE_RANK, paths and PATH are this node's,
 * whatever the launcher forwarded from the head) and this node's workdir, then execs the command.
 * The launcher's own variables (HOROVOD_*, OMPI_*) pass through untouched.
 */
export function renderRankScript(plan: { dir: string; workdir: string; argv: readonly string[] }): string {
  if (plan.argv.length === 0) throw new Error("argv must not be empty");
  const dir = normalizeDir(plan.dir);
  const failed = WRAPPER_FAILURE_EXIT_CODE;
  return `#!/bin/sh
# Trainyard rank wrapper (generated). The head node's launcher starts it over SSH for every rank
# on this node: this node's environment and workdir, then the job's command.
cd ${shellQuote(dir)} || exit ${failed}
if [ ! -r env ]; then echo "trainyard: env file missing in ${dir.replace(/[^A-Za-z0-9/._+-]/g, "?")}" >&2; exit ${failed}; fi
set -a
. ./env
set +a
cd ${shellQuote(plan.workdir)} || { echo "trainyard: cannot cd to workdir" >&2; exit ${failed}; }
exec ${shellJoin(plan.argv)}
`;
}

// ---------------------------------------------------------------------------------------------
// Commands run over SSH

/** Starts launch.sh detached from the SSH session, in a new session and process group. */
export function startCommand(dir: string): string {
  return `setsid -f /bin/sh ${shellQuote(`${normalizeDir(dir)}/launch.sh`)} </dev/null >/dev/null 2>&1`;
}

/**
 * Prints the wrapper's pid (its process group id) once launch.sh has published it, else nothing.
 * Only the pid file: what a starting launch waits for costs no scan of the node's processes.
 */
export function pidCommand(dir: string): string {
  const f = shellQuote(`${normalizeDir(dir)}/pid`);
  return sh(`if [ -f ${f} ]; then cat ${f}; fi`);
}

/** The pid `pidCommand` printed, when it is one. */
export function parsePid(stdout: string): number | undefined {
  const s = stdout.trim();
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/**
 * Shared prelude: finds the attempt's live processes. Sets pg (group id from pid), ty_grp (live
 * members of that group, only when the group is provably still ours: the pid can be reused once
 * the group is gone), ty_env (processes of this user whose environ holds the attempt id),
 * ty_ours and ty_all (both lists, deduplicated). Zombies are not counted: they hold nothing.
 */
function findProcesses(dir: string, attemptId: string): string {
  return `d=${shellQuote(dir)}
id=${shellQuote(attemptId)}
pg=
if [ -f "$d/pid" ]; then read -r pg <"$d/pid" || :; fi
case $pg in "" | *[!0-9]*) pg= ;; esac
ty_grp=
ty_ours=
if [ -n "$pg" ]; then
  for f in /proc/[0-9]*/stat; do
    { read -r l <"$f"; } 2>/dev/null || continue
    l=\${l##*) }
    set -- $l
    if [ "$1" != Z ] && [ "$3" = "$pg" ]; then p=\${f#/proc/}; ty_grp="$ty_grp \${p%/stat}"; fi
  done
  if [ -n "$ty_grp" ] && grep -qzxF -e "$d/launch.sh" "/proc/$pg/cmdline" 2>/dev/null; then ty_ours=1; fi
fi
ty_env=
for f in $(grep -lzxF -e "TRAINYARD_ATTEMPT_ID=$id" /proc/[0-9]*/environ 2>/dev/null); do
  p=\${f#/proc/}
  p=\${p%/environ}
  if [ "$p" = "$$" ] || [ ! -O "/proc/$p" ]; then continue; fi
  ty_env="$ty_env $p"
  case " $ty_grp " in *" $p "*) ty_ours=1 ;; esac
done
[ -n "$ty_ours" ] || ty_grp=
ty_all=$ty_env
for p in $ty_grp; do
  case " $ty_all " in *" $p "*) ;; *) ty_all="$ty_all $p" ;; esac
done
`;
}

export interface ProbeOptions {
  logTailBytes: number;
  metricsLines: number;
  /** Defaults to the last segment of `dir` (attempt directories end in the attempt id). */
  attemptId?: string;
  /** Also sample GPUs (nvidia-smi on this PATH, or the login PATH) and the attempt's CPU/memory. */
  telemetry?: { path?: string | undefined };
}

export interface ProbeResult {
  /** launch.sh has published its pid. */
  started: boolean;
  pgid?: number;
  /** Some process of the attempt is still running (group member or environ match). */
  alive: boolean;
  exitCode?: number;
  logSize: number;
  logTail: string;
  /** Parsed JSON objects from the last lines of metrics.jsonl; malformed lines are skipped. */
  metrics: Array<Record<string, unknown>>;
  /** GPU and process samples, when asked for. */
  telemetry?: NodeTelemetry;
  /** Raw checkpoint announcement lines of metrics.jsonl (the newest), when the probe read them (node-probe.ts). */
  announcements?: string[];
}

const PROBE_HEADER = "@@trainyard-probe 1";

/**
 * One round trip that tells everything about one attempt on a node. The monitor asks about all
 * the attempts of a node at once (node-probe.ts), whose answers are tested against this one. Every section is
 * one `@@key value` line; log and metrics bytes come base64-encoded so no content can fake a marker.
 */
export function probeCommand(dir: string, opts: ProbeOptions): string {
  const d = normalizeDir(dir);
  const attemptId = checkAttemptId(opts.attemptId ?? basename(d));
  const tail = nonNegativeInt("logTailBytes", opts.logTailBytes);
  const lines = nonNegativeInt("metricsLines", opts.metricsLines);
  return sh(`${findProcesses(d, attemptId)}echo ${shellQuote(PROBE_HEADER)}
if [ -n "$pg" ]; then echo "@@pgid $pg"; fi
if [ -n "$ty_all" ]; then echo "@@alive 1"; else echo "@@alive 0"; fi
if [ -f "$d/exit_code" ]; then ec=; read -r ec <"$d/exit_code" || :; echo "@@exit $ec"; fi
if [ -f "$d/output.log" ]; then
  echo "@@logsize $(wc -c <"$d/output.log")"
  echo "@@logtail $(tail -c ${tail} "$d/output.log" | base64 | tr -d '\\n')"
fi
if [ -f "$d/metrics.jsonl" ]; then echo "@@metrics $(tail -n ${lines} "$d/metrics.jsonl" | base64 | tr -d '\\n')"; fi
${opts.telemetry ? telemetryScript(opts.telemetry.path) : ""}echo @@end
`);
}

export class ProbeParseError extends Error {
  override name = "ProbeParseError";
}

export function parseProbe(stdout: string): ProbeResult {
  const fields = new Map<string, string>();
  let header = false;
  let end = false;
  for (const raw of stdout.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === PROBE_HEADER) header = true;
    else if (line === "@@end") end = true;
    else if (header && !end && line.startsWith("@@")) {
      const sp = line.indexOf(" ");
      fields.set(sp < 0 ? line.slice(2) : line.slice(2, sp), sp < 0 ? "" : line.slice(sp + 1));
    }
  }
  // A cut-off probe (dropped connection, killed shell) must not read as "process gone".
  if (!header || !end) throw new ProbeParseError(`incomplete probe output: ${JSON.stringify(stdout.slice(0, 200))}`);

  const int = (v: string | undefined): number | undefined => {
    const s = v?.trim();
    return s !== undefined && /^-?\d+$/.test(s) ? Number(s) : undefined;
  };
  const pgid = int(fields.get("pgid"));
  const exitCode = int(fields.get("exit"));
  const metrics: Array<Record<string, unknown>> = [];
  for (const line of decode(fields.get("metrics")).split("\n")) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) metrics.push(v as Record<string, unknown>);
    } catch {
      // A line still being written, or not JSON: the next probe sees it whole, or never.
    }
  }
  return {
    started: pgid !== undefined,
    ...(pgid !== undefined ? { pgid } : {}),
    alive: fields.get("alive") === "1",
    ...(exitCode !== undefined ? { exitCode } : {}),
    logSize: int(fields.get("logsize")) ?? 0,
    logTail: decode(fields.get("logtail")),
    metrics,
    ...(fields.has("telemetry") ? { telemetry: parseTelemetry(decode(fields.get("telemetry")), fields.get("proc")) } : {}),
  };
}

function decode(b64: string | undefined): string {
  return b64 ? Buffer.from(b64, "base64").toString("utf8") : "";
}

/**
 * Signals the attempt's process group (when it is still ours) and every process carrying the
 * attempt id in its environment. Prints the pids it signalled, one per line.
 */
export function stopCommand(dir: string, attemptId: string, signal: "TERM" | "KILL"): string {
  if (signal !== "TERM" && signal !== "KILL") throw new Error(`unsupported signal ${String(signal)}`);
  const d = normalizeDir(dir);
  return sh(`${findProcesses(d, checkAttemptId(attemptId))}if [ -n "$ty_ours" ]; then kill -s ${signal} -- "-$pg" 2>/dev/null; fi
for p in $ty_all; do kill -s ${signal} "$p" 2>/dev/null; echo "$p"; done
exit 0
`);
}

/** Prints the pids still alive for this attempt, one per line (empty output: nothing is left). */
export function survivorsCommand(dir: string, attemptId: string): string {
  const d = normalizeDir(dir);
  return sh(`${findProcesses(d, checkAttemptId(attemptId))}for p in $ty_all; do echo "$p"; done
exit 0
`);
}

export function parseSurvivors(stdout: string): number[] {
  return stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

/** Raw bytes of output.log from byte offset `fromByte` (0-based), at most `maxBytes` of them. */
export function logReadCommand(dir: string, fromByte: number, maxBytes: number): string {
  const f = shellQuote(`${normalizeDir(dir)}/output.log`);
  const from = nonNegativeInt("fromByte", fromByte);
  const max = nonNegativeInt("maxBytes", maxBytes);
  return sh(`if [ -f ${f} ]; then tail -c +${from + 1} ${f} | head -c ${max}; fi`);
}
