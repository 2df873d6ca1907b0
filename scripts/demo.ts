/**
 * The demo, done with the `trainyard` CLI as a user would: `platform up` starts Redis, FerretDB,
 * the sshd nodes and the five services in the background; the operator creates team "demo" and
 * its keys; the team's admin registers the local nodes as cluster "local" from a YAML file whose
 * key is a file path; a member submits examples/pytorch-ddp/job.json and follows it to its end.
 * Exits with the job's outcome (0 = SUCCEEDED). The platform keeps running afterwards (contexts
 * "local" = operator, "demo" = the member), so `trainyard ps`, `logs`, `costs` work on;
 * `trainyard platform down` stops it. Arguments are passed to `trainyard platform up` (e.g.
 * `--launcher 2`). TRAINYARD_EXAMPLE picks another example, e.g. `tensorflow-mwms`, `mpi`,
 * `horovod`, `horovod/job-elastic.json`, `command`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "packages/cli/bin/trainyard");
const infraDir = process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra";
const platformDir = process.env.TRAINYARD_PLATFORM_DIR ?? "/var/tmp/trainyard-platform";
const say = (msg: string) => console.error(`[demo] ${msg}`);

/** Runs `trainyard …`, showing the command; `capture` keeps stdout (a key) off the screen. */
function trainyard(args: string[], opts: { capture?: boolean; input?: string; ok?: number[] } = {}) {
  console.error(`$ trainyard ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(" ")}`);
  const r = spawnSync(bin, args, {
    stdio: [opts.input !== undefined ? "pipe" : "ignore", opts.capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  const code = r.status ?? 1;
  if (!(opts.ok ?? [0]).includes(code)) {
    say(`'trainyard ${args[0]}' exited ${code}`);
    process.exit(code);
  }
  return { code, stdout: r.stdout ?? "" };
}

const up = trainyard(["platform", "up", "--login", "local", ...process.argv.slice(2)]);
void up;
const url = JSON.parse(trainyard(["platform", "status", "--json"], { capture: true }).stdout).url as string;

// A team of its own, as a real deployment has: the bootstrap (operator) key creates it and issues
// its keys; the team's admin registers the cluster; a member runs the job. 409 = already there.
if (trainyard(["--context", "local", "teams", "create", "demo", "--max-gpus", "8"], { ok: [0, 3] }).code === 3)
  say("(a repeat run: team 'demo' is there already)");
const stamp = Date.now().toString(36);
for (const [role, context] of [
  ["admin", "demo-admin"],
  ["member", "demo"],
] as const) {
  const key = trainyard(
    [
      "--context",
      "local",
      "keys",
      "create",
      "--team",
      "demo",
      "--name",
      `demo-${role}-${stamp}`,
      "--role",
      role,
      "--expires-days",
      "30",
    ],
    { capture: true },
  ).stdout.trim();
  trainyard(["login", "--url", url, "--token", "-", "--name", context], { input: key });
}

const infra = JSON.parse(readFileSync(join(infraDir, "infra.json"), "utf8"));
const nodes = infra.nodes.slice(0, 2) as Array<Record<string, string | number>>;
const clusterFile = join(platformDir, "demo", "cluster.yaml");
mkdirSync(dirname(clusterFile), { recursive: true });
writeFileSync(
  clusterFile,
  [
    "# The local sshd nodes of scripts/infra/up.sh. The private key is read from the file named here.",
    "name: local",
    "nodes:",
    ...nodes.map(
      (n) =>
        `  - {name: ${n.name}, host: ${n.host}, port: ${n.port}, user: ${n.user}, gpus: 2, gpuType: cpu, workRoot: ${n.workRoot}}`,
    ),
    "ssh:",
    `  privateKeyFile: ${infra.clientKeyPath}`,
    "  hostKeys:",
    ...nodes.map((n) => `    ${n.name}: "${n.hostKeyFingerprint}"`),
    "env:",
    ...Object.entries(infra.nodeEnv as Record<string, string>).map(([k, v]) => `  ${k}: "${v}"`),
    "",
  ].join("\n"),
);
say(`cluster spec: ${clusterFile}`);
if (trainyard(["--context", "demo-admin", "cluster", "add", "-f", clusterFile], { ok: [0, 3] }).code === 3)
  say("(a repeat run: cluster 'local' is there already)");
trainyard(["--context", "demo-admin", "cluster", "check", "local"]);

const example = process.env.TRAINYARD_EXAMPLE ?? "pytorch-ddp";
const jobFile = join(root, "examples", example.endsWith(".json") ? example : join(example, "job.json"));
const result = trainyard(["submit", "-f", jobFile], { ok: [0, 1, 7, 8] });
say(`the platform keeps running at ${url} (context 'demo' is current):`);
say("  trainyard ps | trainyard logs <id> | trainyard costs --by job | trainyard platform status");
say("  stop it with: trainyard platform down   (pnpm trainyard platform down without the PATH link)");
process.exit(result.code);
