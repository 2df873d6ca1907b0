/**
 * What GPUs a node really has, read with nvidia-smi (pure: the script to run and its parser).
 * The cluster's declared `gpus`/`gpuType` stay the contract; a check compares the two, and a node
 * whose GPUs differ from what was declared is kept from placement until someone acknowledges it.
 */

/** One GPU as nvidia-smi lists it. */
export interface DetectedGpu {
  index: number;
  name: string;
  uuid: string;
  memoryMiB?: number;
  pciBusId: string;
}

export interface GpuInventory {
  /** The node has an nvidia-smi on the PATH jobs get. */
  nvidiaSmi: boolean;
  gpus: DetectedGpu[];
  driverVersion?: string;
  cudaVersion?: string;
  /** nvidia-smi ran and failed (no driver, GPU fallen off the bus…): its words. */
  error?: string;
}

export const GPU_QUERY_FIELDS = ["index", "name", "uuid", "memory.total", "driver_version", "pci.bus_id"] as const;

/**
 * One round trip: whether nvidia-smi exists, the CSV of every GPU, and the CUDA version from the
 * banner (no query field reports it on every driver). Markers start with @@ on lines of their own.
 */
export function gpuInventoryScript(): string {
  return `if ! command -v nvidia-smi >/dev/null 2>&1; then echo '@@nvidia-smi none'; exit 0; fi
echo '@@gpus'
out=$(nvidia-smi --query-gpu=${GPU_QUERY_FIELDS.join(",")} --format=csv,noheader,nounits 2>&1); rc=$?
printf '%s\\n' "$out"
if [ "$rc" != 0 ]; then echo "@@error $rc"; fi
echo "@@cuda $(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\\([0-9.][0-9.]*\\).*/\\1/p' | head -n 1)"
echo '@@end'
`;
}

const num = (v: string | undefined): number | undefined => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) ? n : undefined;
};

/** Parse what gpuInventoryScript printed. */
export function parseGpuInventory(stdout: string): GpuInventory {
  const lines = stdout.split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines.includes("@@nvidia-smi none")) return { nvidiaSmi: false, gpus: [] };
  const start = lines.indexOf("@@gpus");
  const end = lines.indexOf("@@end");
  if (start < 0 || end < start) throw new Error(`incomplete GPU inventory output: ${JSON.stringify(stdout.slice(0, 200))}`);
  const body = lines.slice(start + 1, end);
  const cuda = body
    .find((l) => l.startsWith("@@cuda"))
    ?.slice("@@cuda".length)
    .trim();
  const failed = body.some((l) => l.startsWith("@@error"));
  const rows = body.filter((l) => l.trim() && !l.startsWith("@@"));
  if (failed) {
    return { nvidiaSmi: true, gpus: [], error: rows.join(" ").trim().slice(0, 500) || "nvidia-smi failed" };
  }
  const gpus: DetectedGpu[] = [];
  let driverVersion: string | undefined;
  for (const row of rows) {
    const f = row.split(",").map((s) => s.trim());
    const index = num(f[0]);
    if (f.length < GPU_QUERY_FIELDS.length || index === undefined) {
      return { nvidiaSmi: true, gpus: [], error: `unexpected nvidia-smi line: ${row.slice(0, 200)}` };
    }
    const memoryMiB = num(f[3]);
    gpus.push({ index, name: f[1]!, uuid: f[2]!, ...(memoryMiB !== undefined ? { memoryMiB } : {}), pciBusId: f[5]! });
    driverVersion ??= f[4];
  }
  return {
    nvidiaSmi: true,
    gpus,
    ...(driverVersion ? { driverVersion } : {}),
    ...(cuda ? { cudaVersion: cuda } : {}),
  };
}

/** "NVIDIA H100 80GB HBM3" -> "nvidiah10080gbhbm3": compared without case, spaces or punctuation. */
const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * How the node differs from what was declared: an empty list means it matches. A node declared
 * with gpuType "cpu" runs CPU slots and expects no GPU, so nothing is compared.
 */
export function inventoryMismatch(declared: { gpus: number; gpuType: string }, inv: GpuInventory): string[] {
  if (declared.gpuType === "cpu") return [];
  if (!inv.nvidiaSmi) return [`declared ${declared.gpus} x ${declared.gpuType}, but the node has no nvidia-smi`];
  if (inv.error) return [`nvidia-smi failed: ${inv.error}`];
  const out: string[] = [];
  if (inv.gpus.length !== declared.gpus) out.push(`declared ${declared.gpus} GPUs, nvidia-smi lists ${inv.gpus.length}`);
  const want = squash(declared.gpuType);
  const other = [...new Set(inv.gpus.map((g) => g.name).filter((name) => !squash(name).includes(want)))];
  if (other.length)
    out.push(`declared gpuType '${declared.gpuType}', nvidia-smi reports ${other.map((n) => `'${n}'`).join(", ")}`);
  return out;
}
