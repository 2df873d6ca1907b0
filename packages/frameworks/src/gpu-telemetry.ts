/**
 * Per-node samples taken with every monitor probe of a running attempt: each GPU's utilisation,
 * memory, temperature and power (with the same fault counters the cluster check reads), and the
 * CPU and memory of the attempt's processes. Pure: the shell the probe embeds and its parser.
 */
import type { GpuSample } from "@trainyard/common";
import { type GpuHealth, gpuQueryScript, parseGpuHealth, readGpuSection } from "./gpu-inventory";
import { shellQuote } from "./shell";

export const GPU_TELEMETRY_FIELDS = ["utilization.gpu", "memory.used", "memory.total", "temperature.gpu", "power.draw"] as const;

export interface NodeTelemetry {
  /** Every GPU nvidia-smi lists (the monitor keeps those of the attempt). Empty without nvidia-smi. */
  gpus: GpuSample[];
  health: GpuHealth[];
  /** nvidia-smi is there but failed: a fault. */
  error?: string;
  /** The attempt's processes on the node: summed CPU percent (100 = one core) and resident memory. */
  proc?: { cpuPct: number; rssMiB: number };
}

/**
 * Shell run inside the probe, after the attempt's pids are known (`$ty_all`): prints `@@telemetry`
 * and the base64 of the GPU section, and `@@proc CPU RSS_KIB`. nvidia-smi is looked up on `path`
 * (the cluster env's PATH, the one jobs get) when given.
 */
export function telemetryScript(path: string | undefined): string {
  const setPath = path ? `PATH=${shellQuote(path)}; export PATH; ` : "";
  return `if [ -n "$ty_all" ]; then
  echo "@@proc $(ps -o %cpu=,rss= -p "$(echo $ty_all | tr ' ' ',')" 2>/dev/null | awk '{c+=$1; r+=$2} END {printf "%.1f %d", c, r}')"
fi
echo "@@telemetry $( (${setPath}if command -v nvidia-smi >/dev/null 2>&1; then
${gpuQueryScript("gpu", GPU_TELEMETRY_FIELDS)}fi) | base64 | tr -d '\\n')"
`;
}

const num = (v: string | undefined): number | undefined => {
  if (v === undefined || v === "" || v.startsWith("[")) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

/** Parse the `@@telemetry` (decoded) and `@@proc` values of a probe. */
export function parseTelemetry(gpuSection: string, proc: string | undefined): NodeTelemetry {
  const out: NodeTelemetry = { gpus: [], health: [] };
  const [cpu, rssKiB] = (proc ?? "").trim().split(/\s+/).map(Number);
  if (proc !== undefined && Number.isFinite(cpu) && Number.isFinite(rssKiB)) {
    out.proc = { cpuPct: cpu!, rssMiB: Math.round(rssKiB! / 1024) };
  }
  const section = readGpuSection(gpuSection.split("\n"), "gpu");
  if (!section) return out;
  if (section.failed) return { ...out, error: section.rows.join(" ").trim().slice(0, 500) || "nvidia-smi failed" };
  for (const row of section.rows) {
    const f = row.split(",").map((s) => s.trim());
    const index = num(f[0]);
    if (index === undefined || f.length < 1 + GPU_TELEMETRY_FIELDS.length) continue;
    const [utilPct, memUsedMiB, memTotalMiB, tempC, powerW] = f.slice(1, 6).map(num);
    const sample: GpuSample = { index };
    if (utilPct !== undefined) sample.utilPct = utilPct;
    if (memUsedMiB !== undefined) sample.memUsedMiB = memUsedMiB;
    if (memTotalMiB !== undefined) sample.memTotalMiB = memTotalMiB;
    if (tempC !== undefined) sample.tempC = tempC;
    if (powerW !== undefined) sample.powerW = powerW;
    out.gpus.push(sample);
    if (f.length > 1 + GPU_TELEMETRY_FIELDS.length) out.health.push(parseGpuHealth(index, f, GPU_TELEMETRY_FIELDS.length));
  }
  return out;
}
