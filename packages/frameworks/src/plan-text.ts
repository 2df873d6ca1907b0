import { ATTEMPT_FILES, renderEnvFile } from "./node-protocol";
import type { LaunchPlan } from "./pytorch";
import { shellJoin } from "./shell";

/** Names that usually hold secrets. Over-matching only hides a value from a display. */
const SECRET_KEY = /(SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL)/i;
/** Matches of SECRET_KEY that are well-known non-secrets and useful to see in a dry run. */
const NOT_SECRET = new Set(["TOKENIZERS_PARALLELISM", "NCCL_IB_PKEY"]);
export const REDACTED = "<redacted>";

/**
 * A copy of `env` for display (dry runs, plan text, logs) with secret-looking values replaced.
 * `secretKeys` are redacted whatever their name; Trainyard's own TRAINYARD_* values never are.
 */
export function redactEnv(env: Record<string, string>, secretKeys: readonly string[] = []): Record<string, string> {
  const always = new Set(secretKeys);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const secret = always.has(k) || (SECRET_KEY.test(k) && !NOT_SECRET.has(k) && !k.startsWith("TRAINYARD_"));
    out[k] = secret ? REDACTED : v;
  }
  return out;
}

const bytes = (s: string) => Buffer.byteLength(s);

/**
 * Human-readable rendering of a launch plan: what runs where, with which environment, and the
 * exact launch.sh each node gets. Used for dry runs and as golden files read in code review.
 * Secret-looking env values are redacted; inline job files are listed, not printed.
 */
export function renderPlanText(plan: LaunchPlan, opts: { secretKeys?: readonly string[] } = {}): string {
  const out: string[] = [];
  out.push(`# Trainyard launch plan: ${plan.framework}, ${plan.rendezvous} rendezvous`);
  out.push(`master    ${plan.masterAddr}:${plan.masterPort}`);
  out.push(`nodes     ${plan.nodes.length} (${plan.nodes.map((n) => `${n.nodeRank}=${n.node}`).join(", ")})`);
  out.push(`ports     ${plan.portsPerNode} per node`);
  for (const n of plan.nodes) {
    const generated = new Set<string>([ATTEMPT_FILES.env, ATTEMPT_FILES.launch]);
    const userFiles = Object.keys(n.files)
      .filter((f) => !generated.has(f))
      .sort();
    out.push("");
    out.push(`## node ${n.node} (rank ${n.nodeRank}) on ${n.host}`);
    out.push(`dir       ${n.dir}`);
    out.push(`workdir   ${n.workdir}`);
    out.push(`command   ${shellJoin(n.argv)}`);
    out.push(`files     ${[...generated, ...userFiles].map((f) => `${f} (${bytes(n.files[f] ?? "")} bytes)`).join(", ")}`);
    out.push("");
    out.push(`### ${ATTEMPT_FILES.env} (secret values redacted)`);
    out.push(renderEnvFile(redactEnv(n.env, opts.secretKeys)).trimEnd());
    out.push("");
    out.push(`### ${ATTEMPT_FILES.launch}`);
    out.push((n.files[ATTEMPT_FILES.launch] ?? "").trimEnd());
  }
  return `${out.join("\n")}\n`;
}
