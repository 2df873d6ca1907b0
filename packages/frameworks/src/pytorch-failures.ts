/**
 * What torchrun's log says about failed ranks.
 *
 * Why the monitor needs this: when a local worker dies, torch 1.13's agent logs the failure at once
 * but then waits in its exit barrier (up to 300 s) for the agents on the other nodes, so the node's
 * process stays alive. Reading the agent's line lets Trainyard stop the gang right away.
 */
export interface WorkerFailure {
  localRank: number;
  exitCode: number;
}

const AGENT_FAILURE = /failed \(exitcode: (-?\d+)\) local_rank: (\d+)/g;

/** The latest "failed (exitcode: N) local_rank: R" the agent logged, if any. */
export function torchrunWorkerFailure(logTail: string): WorkerFailure | undefined {
  let last: RegExpExecArray | null = null;
  for (const m of logTail.matchAll(AGENT_FAILURE)) last = m;
  return last ? { exitCode: Number(last[1]), localRank: Number(last[2]) } : undefined;
}

/**
 * torchrun's final failure summary names the first failed global rank ("rank      : 3 (local_rank: 1)",
 * "exitcode  : 3 (pid: 123)").
 */
export function torchrunRootCause(logTail: string): { rank?: number; exitCode?: number } {
  const at = logTail.lastIndexOf("Root Cause");
  if (at < 0) return {};
  const section = logTail.slice(at);
  const rank = /rank\s*:\s*(\d+)/.exec(section);
  const code = /exitcode\s*:\s*(-?\d+)/.exec(section);
  return {
    ...(rank ? { rank: Number(rank[1]) } : {}),
    ...(code ? { exitCode: Number(code[1]) } : {}),
  };
}

export interface FailedRank {
  rank: number;
  localRank: number;
  exitCode: number;
}

const SUMMARY_ENTRY = /rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)/g;

/**
 * Every failed rank torchrun's summary lists ("Failures:" and "Root Cause"). The root cause it
 * names is only the first failure it observed; a rank killed by a signal listed beside it is
 * usually what really happened, and the caller can prefer it.
 */
export function torchrunFailedRanks(logTail: string): FailedRank[] {
  const seen = new Map<number, FailedRank>();
  for (const m of logTail.matchAll(SUMMARY_ENTRY)) {
    seen.set(Number(m[1]), { rank: Number(m[1]), localRank: Number(m[2]), exitCode: Number(m[3]) });
  }
  return [...seen.values()];
}
