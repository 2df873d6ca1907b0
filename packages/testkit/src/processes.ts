import { readdirSync, readFileSync } from "node:fs";

/**
 * Pids of processes on this machine whose environment carries TRAINYARD_ATTEMPT_ID=<attemptId>.
 * The local test nodes are users of this machine, so as root the tests can look at every node's
 * processes directly, independently of the product's own verification.
 */
export function processesOfAttempt(attemptId: string): number[] {
  const needle = `TRAINYARD_ATTEMPT_ID=${attemptId}`;
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "latin1").split("\0");
      if (env.includes(needle)) found.push(Number(entry));
    } catch {
      // process ended or not readable
    }
  }
  return found;
}
