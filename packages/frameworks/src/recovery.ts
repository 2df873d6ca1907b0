import type { RetryPolicy } from "@trainyard/common";
import { shellQuote } from "./shell";

// ------------------------------------------------------------------------------- retry decisions

export interface FailureFacts {
  /** The node was lost (unreachable for several checks, or its processes vanished). */
  lost: boolean;
  exitCode?: number;
  /** Log tails of the failed node (and any other node) to match patterns against. */
  logTail: string;
  /** Set when the attempt is restarted because it stalled. */
  stalled?: boolean;
}

export type RetryDecision = { retry: true; why: string } | { retry: false; why: string };

/**
 * Whether a failed attempt should be restarted from its checkpoint. Order matters: retries left
 * first, then what kind of failure it was. Lost nodes and stalls always retry; a retryable log
 * pattern (CUDA/NCCL errors, peers gone) beats a fatal one; a fatal pattern (SyntaxError …) or a
 * fatal exit code fails at once; anything else retries.
 */
export function decideRetry(policy: RetryPolicy, facts: FailureFacts, failedAttemptNumber: number): RetryDecision {
  if (failedAttemptNumber > policy.maxRetries) {
    return {
      retry: false,
      why:
        policy.maxRetries === 0
          ? "retries are off (maxRetries 0)"
          : `retries exhausted (${policy.maxRetries} of ${policy.maxRetries} used)`,
    };
  }
  if (facts.lost) return { retry: true, why: "a node was lost" };
  if (facts.stalled) return { retry: true, why: "the job stalled" };
  const retryable = policy.retryableLogPatterns.find((p) => new RegExp(p).test(facts.logTail));
  if (retryable) return { retry: true, why: `log matches retryable pattern /${retryable}/` };
  const fatal = policy.fatalLogPatterns.find((p) => new RegExp(p).test(facts.logTail));
  if (fatal) return { retry: false, why: `log matches fatal pattern /${fatal}/` };
  if (facts.exitCode !== undefined && policy.fatalExitCodes.includes(facts.exitCode)) {
    return { retry: false, why: `exit code ${facts.exitCode} is fatal` };
  }
  return { retry: true, why: "failure is retryable" };
}

/** Delay before the attempt after `failedAttemptNumber`: exponential from backoffSeconds, capped. */
export function retryDelayMs(policy: RetryPolicy, failedAttemptNumber: number): number {
  const seconds = policy.backoffSeconds * 2 ** Math.max(0, failedAttemptNumber - 1);
  return Math.round(Math.min(seconds, policy.maxBackoffSeconds) * 1000);
}

// ------------------------------------------------------------------------ checkpoints on a node

export interface CheckpointAnnouncement {
  path: string;
  step: number;
  metrics: Record<string, number>;
}

/** Announcements in metrics lines: {"checkpoint":"<path>","step":N, ...numeric metrics}. */
export function parseCheckpointAnnouncements(lines: string[]): CheckpointAnnouncement[] {
  const out: CheckpointAnnouncement[] = [];
  for (const line of lines) {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (!v || typeof v !== "object") continue;
    const o = v as Record<string, unknown>;
    if (typeof o.checkpoint !== "string" || typeof o.step !== "number" || !Number.isFinite(o.step)) continue;
    const metrics: Record<string, number> = {};
    for (const [k, val] of Object.entries(o)) {
      if (k !== "step" && k !== "checkpoint" && typeof val === "number" && Number.isFinite(val)) metrics[k] = val;
    }
    out.push({ path: o.checkpoint, step: o.step, metrics });
  }
  return out;
}

const SAFE_PATH = /^\/[^\0\n]*$/;

/**
 * A checkpoint path Trainyard may stat, copy or delete: absolute, normalised, no '..', and inside
 * the job's checkpoint directory (a script announcing "/" must never make GC delete it).
 */
export function isManagedCheckpointPath(path: string, checkpointDir: string): boolean {
  if (!SAFE_PATH.test(path) || path.split("/").some((s) => s === ".." || s === ".")) return false;
  const root = checkpointDir.replace(/\/+$/, "");
  return path.startsWith(`${root}/`) && path.length > root.length + 1;
}

/** Prints the metrics lines that announce checkpoints (the last `max` of them). */
export function announcementsCommand(metricsFile: string, max: number): string {
  return `/bin/sh -c ${shellQuote(`[ -f ${shellQuote(metricsFile)} ] && grep -h '"checkpoint"' ${shellQuote(metricsFile)} | tail -n ${Math.max(1, Math.floor(max))}; exit 0`)}`;
}

/** Prints "<bytes>\t<path>" for each path that exists (files or directories). */
export function statPathsCommand(paths: string[]): string {
  const quoted = paths.map(shellQuote).join(" ");
  return `/bin/sh -c ${shellQuote(`for p in ${quoted}; do if [ -e "$p" ]; then printf '%s\\t%s\\n' "$(du -sb -- "$p" | cut -f1)" "$p"; fi; done; exit 0`)}`;
}

export function parseStatPaths(stdout: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab < 0) continue;
    const size = Number(line.slice(0, tab));
    if (Number.isFinite(size)) sizes.set(line.slice(tab + 1), size);
  }
  return sizes;
}

/** Entries of the checkpoint directory matching a simple glob (fallback for scripts that don't announce). */
export function scanCheckpointsCommand(checkpointDir: string, pattern: string): string {
  if (!/^[A-Za-z0-9._*?-]{1,64}$/.test(pattern)) throw new Error(`unsafe scan pattern ${JSON.stringify(pattern)}`);
  return `/bin/sh -c ${shellQuote(`[ -d ${shellQuote(checkpointDir)} ] && find ${shellQuote(checkpointDir)} -mindepth 1 -maxdepth 1 -name ${shellQuote(pattern)} -printf '%T@\\t%p\\n'; exit 0`)}`;
}

/** Remove one managed checkpoint path (the caller has checked isManagedCheckpointPath). */
export function removePathCommand(path: string): string {
  return `/bin/sh -c ${shellQuote(`rm -rf -- ${shellQuote(path)}`)}`;
}

/** Stream a checkpoint (file or directory) as a tar archive on stdout. */
export function tarCreateCommand(path: string): string {
  if (!SAFE_PATH.test(path) || path === "/") throw new Error(`unsafe checkpoint path ${JSON.stringify(path)}`);
  const slash = path.lastIndexOf("/");
  const parent = path.slice(0, slash) || "/";
  const name = path.slice(slash + 1);
  return `/bin/sh -c ${shellQuote(`tar -C ${shellQuote(parent)} -cf - -- ${shellQuote(name)}`)}`;
}

/** Unpack a tar archive from stdin into a directory (created if missing). */
export function tarExtractCommand(dir: string): string {
  if (!SAFE_PATH.test(dir)) throw new Error(`unsafe directory ${JSON.stringify(dir)}`);
  return `/bin/sh -c ${shellQuote(`mkdir -p -- ${shellQuote(dir)} && tar -C ${shellQuote(dir)} -xf -`)}`;
}
