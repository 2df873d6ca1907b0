/**
 * The GPU check (scripts/gpu-check.sh runs it): on a machine with NVIDIA GPUs, brings the whole
 * platform up with the `trainyard` CLI, registers local node n1 as a 1-node cluster with the
 * machine's GPUs, runs `cluster check` (nvidia-smi detection), then a real NCCL DDP job on every
 * GPU (torchrun, one rank per GPU, train_nccl.py) with the cluster's NCCL settings, and prints
 * what the platform saw: the inventory, the job's outcome, each rank's all-reduce line, the NCCL
 * lines that show the settings arrived, and the telemetry samples of GET /v1/jobs/:id/metrics.
 * Exit 0 only when the job SUCCEEDED, every rank printed its all-reduce over NCCL, and telemetry
 * recorded non-zero GPU utilisation. Everything printed comes from this run; nothing is made up.
 *
 * Input (from gpu-check.sh): GPU_CHECK_PYTHON_BIN (the bin directory of a Python whose torch has
 * CUDA and NCCL), GPU_CHECK_SECONDS (training time, default 60).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = join(root, "packages/cli/bin/trainyard");
const infraDir = process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra";
const platformDir = process.env.TRAINYARD_PLATFORM_DIR ?? "/var/tmp/trainyard-platform";
const pythonBin = process.env.GPU_CHECK_PYTHON_BIN;
const seconds = Number(process.env.GPU_CHECK_SECONDS ?? "60");
const say = (msg: string) => console.log(`[gpu-check] ${msg}`);

if (!pythonBin) throw new Error("GPU_CHECK_PYTHON_BIN is not set (run scripts/gpu-check.sh)");

function trainyard(args: string[], opts: { capture?: boolean; input?: string; ok?: number[] } = {}) {
  console.log(`$ trainyard ${args.join(" ")}`);
  const r = spawnSync(bin, args, {
    stdio: [opts.input !== undefined ? "pipe" : "ignore", opts.capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  const code = r.status ?? 1;
  if (!(opts.ok ?? [0]).includes(code)) throw new Error(`'trainyard ${args[0]}' exited ${code}`);
  return { code, stdout: r.stdout ?? "" };
}

function nvidiaSmi(query: string): string[] {
  const r = spawnSync("nvidia-smi", [`--query-gpu=${query}`, "--format=csv,noheader,nounits"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`nvidia-smi failed: ${r.stderr}`);
  return r.stdout.trim().split("\n");
}

const gpuNames = nvidiaSmi("name");
const gpus = gpuNames.length;
// The declared type must appear in nvidia-smi's model name (without case or punctuation).
const gpuType = (process.env.GPU_CHECK_GPU_TYPE ?? gpuNames[0]!.replace(/^NVIDIA\s+/i, ""))
  .replace(/[^A-Za-z0-9]/g, "")
  .toLowerCase()
  .slice(0, 63);
say(`${gpus} GPU(s): ${gpuNames.join(", ")}; declared gpuType '${gpuType}'`);

trainyard(["platform", "up", "--login", "local"]);
const url = JSON.parse(trainyard(["platform", "status", "--json"], { capture: true }).stdout).url as string;
trainyard(["--context", "local", "teams", "create", "gpucheck", "--max-gpus", String(gpus)], { ok: [0, 3] });
const stamp = Date.now().toString(36);
const keys: Record<string, string> = {};
for (const role of ["admin", "member"] as const) {
  keys[role] = trainyard(
    [
      "--context",
      "local",
      "keys",
      "create",
      "--team",
      "gpucheck",
      "--name",
      `gpucheck-${role}-${stamp}`,
      "--role",
      role,
      "--expires-days",
      "1",
    ],
    { capture: true },
  ).stdout.trim();
  trainyard(["login", "--url", url, "--token", "-", "--name", `gpucheck-${role}`], { input: keys[role] });
}

const infra = JSON.parse(readFileSync(join(infraDir, "infra.json"), "utf8"));
const n1 = infra.nodes[0] as Record<string, string | number>;
const cluster = `gpu-${stamp}`;
const clusterFile = join(platformDir, "gpu-check", "cluster.yaml");
mkdirSync(dirname(clusterFile), { recursive: true });
writeFileSync(
  clusterFile,
  [
    `name: ${cluster}`,
    "nodes:",
    `  - {name: ${n1.name}, host: ${n1.host}, port: ${n1.port}, user: ${n1.user}, gpus: ${gpus}, gpuType: ${gpuType}, workRoot: ${n1.workRoot}}`,
    "ssh:",
    `  privateKeyFile: ${infra.clientKeyPath}`,
    "  hostKeys:",
    `    ${n1.name}: "${n1.hostKeyFingerprint}"`,
    "env:",
    // The CUDA Python first: its python3 and torchrun run the job.
    `  PATH: "${pythonBin}:${(infra.nodeEnv as Record<string, string>).PATH}"`,
    // One node: NCCL bootstraps over loopback (and the log shows the setting arrived).
    "nccl: {socketIfname: lo}",
    "",
  ].join("\n"),
);
trainyard(["--context", "gpucheck-admin", "cluster", "add", "-f", clusterFile]);
trainyard(["--context", "gpucheck-admin", "cluster", "check", cluster]);

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${keys.member}`, "content-type": "application/json", ...init.headers },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${text}`);
  return (res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as T;
}

interface Sample {
  at: string;
  node: string;
  gpus: Array<{ index: number; utilPct?: number; memUsedMiB?: number; memTotalMiB?: number; tempC?: number; powerW?: number }>;
  proc?: { cpuPct: number; rssMiB: number };
}

const clusterView = await api<{ nodes: Array<{ gpuCheck?: unknown; placementBlocked?: string }> }>(`/v1/clusters/${cluster}`, {
  headers: { authorization: `Bearer ${keys.admin}` },
});
say(`detected: ${JSON.stringify(clusterView.nodes[0]?.gpuCheck)}`);
if (clusterView.nodes[0]?.placementBlocked) throw new Error(`n1 is blocked: ${clusterView.nodes[0].placementBlocked}`);

const { id } = await api<{ id: string }>("/v1/jobs", {
  method: "POST",
  body: JSON.stringify({
    name: "gpu-check-nccl-ddp",
    project: "gpu-check",
    framework: "pytorch",
    cluster,
    resources: { nodes: 1, gpusPerNode: gpus, gpuType },
    command: ["python3", "train_nccl.py", "--seconds", String(seconds)],
    env: { NCCL_DEBUG: "INFO" },
    files: { "train_nccl.py": readFileSync(join(root, "scripts/gpu-check/train_nccl.py"), "utf8") },
  }),
});
say(`job ${id} submitted: NCCL DDP on ${gpus} GPU(s) for ${seconds} s`);

const terminal = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"]);
let job: { status: string; failure?: { reason?: string } } = { status: "QUEUED" };
const deadline = Date.now() + (seconds + 600) * 1000;
let shown = 0;
while (!terminal.has(job.status) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 5000));
  job = await api(`/v1/jobs/${id}`);
  const m = await api<{ items: Sample[] }>(`/v1/jobs/${id}/metrics`);
  for (const s of m.items.slice(shown)) {
    const g = s.gpus.map((x) => `gpu${x.index} util=${x.utilPct}% mem=${x.memUsedMiB}MiB ${x.tempC}C ${x.powerW}W`).join(" | ");
    say(`${job.status} ${s.at} ${s.node}: ${g} | proc cpu=${s.proc?.cpuPct}% rss=${s.proc?.rssMiB}MiB`);
  }
  shown = m.items.length;
}

const log = await api<string>(`/v1/jobs/${id}/logs?node=${n1.name}&maxBytes=4194304`);
const rankLines = log.split("\n").filter((l) => /^rank \d+/.test(l));
const ncclLines = log
  .split("\n")
  .filter((l) => /NCCL INFO (NCCL_SOCKET_IFNAME set|Bootstrap :|comm .* Init COMPLETE)|NCCL version/.test(l));
const samples = (await api<{ items: Sample[] }>(`/v1/jobs/${id}/metrics`)).items;
const peakUtil = Math.max(0, ...samples.flatMap((s) => s.gpus.map((g) => g.utilPct ?? 0)));
const peakMem = Math.max(0, ...samples.flatMap((s) => s.gpus.map((g) => g.memUsedMiB ?? 0)));
const peakPower = Math.max(0, ...samples.flatMap((s) => s.gpus.map((g) => g.powerW ?? 0)));

console.log("\n===== gpu-check result =====");
console.log(`job ${id}: ${job.status}${job.failure?.reason ? ` (${job.failure.reason})` : ""}`);
for (const l of rankLines) console.log(`  ${l}`);
for (const l of ncclLines.slice(0, 8)) console.log(`  ${l}`);
console.log(
  `telemetry: ${samples.length} samples; peak util ${peakUtil}%, peak memory ${peakMem} MiB, peak power ${peakPower} W`,
);
const allreduce = rankLines.filter((l) => / allreduce=\d+ backend=nccl /.test(l)).length;
const ok = job.status === "SUCCEEDED" && allreduce === gpus && peakUtil > 0;
console.log(ok ? "GPU CHECK PASSED" : `GPU CHECK FAILED (${allreduce}/${gpus} ranks reported an NCCL all-reduce)`);
say("the platform keeps running: trainyard platform down stops it");
process.exit(ok ? 0 : 1);
