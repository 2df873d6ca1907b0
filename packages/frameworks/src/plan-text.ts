import { ATTEMPT_FILES, renderEnvFile } from "./node-protocol";
import type { LaunchPlan } from "./plan-types";
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
/** Files Trainyard generates into attempt directories (first path segment), beyond env and launch.sh. */
const GENERATED = new Set(["rank.sh", "hostfile", "appfile", "discover_hosts.sh", "hosts.current", "ssh"]);
const isGenerated = (f: string) => f === ATTEMPT_FILES.env || f === ATTEMPT_FILES.launch || GENERATED.has(f.split("/")[0] ?? "");

export function renderPlanText(plan: LaunchPlan, opts: { secretKeys?: readonly string[] } = {}): string {
  const out: string[] = [];
  out.push(
    plan.framework === "pytorch"
      ? `# Trainyard launch plan: ${plan.framework}, ${plan.rendezvous} rendezvous`
      : `# Trainyard launch plan: ${plan.framework}, ${plan.rendezvous}`,
  );
  out.push(`master    ${plan.masterAddr}:${plan.masterPort}`);
  out.push(`nodes     ${plan.nodes.length} (${plan.nodes.map((n) => `${n.nodeRank}=${n.node}`).join(", ")})`);
  out.push(`ports     ${plan.portsPerNode} per node`);
  if (plan.elastic) out.push(`elastic   ${plan.elastic.min}..${plan.elastic.max} ${plan.elastic.unit}`);
  if (plan.interNodeSsh)
    out.push("ssh       a key pair per attempt, authorised on every node for this attempt only, removed when it ends");
  for (const n of plan.nodes) {
    const first = [ATTEMPT_FILES.env, ATTEMPT_FILES.launch].filter((f) => n.files[f] !== undefined);
    const generated = Object.keys(n.files)
      .filter((f) => isGenerated(f) && !first.includes(f as (typeof first)[number]))
      .sort();
    const userFiles = Object.keys(n.files)
      .filter((f) => !isGenerated(f))
      .sort();
    out.push("");
    out.push(`## node ${n.node} (rank ${n.nodeRank}) on ${n.host}`);
    out.push(`dir       ${n.dir}`);
    out.push(`workdir   ${n.workdir}`);
    if (n.launches) out.push(`command   ${shellJoin(n.argv)}`);
    else {
      out.push("launch    its ranks are started over SSH by the head node's launcher, each through rank.sh");
      out.push(`rank      ${shellJoin(n.argv)}`);
    }
    out.push(
      `files     ${[...first, ...generated, ...userFiles].map((f) => `${f} (${bytes(n.files[f] ?? "")} bytes)`).join(", ")}`,
    );
    if (n.provisioned?.length) out.push(`at launch ${n.provisioned.join(", ")} (written when the attempt starts; never shown)`);
    out.push("");
    out.push(`### ${ATTEMPT_FILES.env} (secret values redacted)`);
    out.push(renderEnvFile(redactEnv(n.env, opts.secretKeys)).trimEnd());
    for (const f of [...first.filter((x) => x !== ATTEMPT_FILES.env), ...generated]) {
      out.push("");
      out.push(`### ${f}`);
      out.push((n.files[f] ?? "").trimEnd());
    }
  }
  return `${out.join("\n")}\n`;
}
