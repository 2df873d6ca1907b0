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
  /** Fault counters per GPU (absent where the driver offers none of them). */
  health?: GpuHealth[];
}

/** Fault signals nvidia-smi reports per GPU; a field the GPU or driver lacks is left out. */
export interface GpuHealth {
  index: number;
  /** Uncorrectable ECC errors since the driver loaded. */
  eccUncorrected?: number;
  /** Memory pages waiting to be retired at the next reset (pre-Ampere). */
  retiredPagesPending?: boolean;
  /** Row remapping failed (Ampere and later): the GPU needs service. */
  remappedRowsFailure?: boolean;
}

/** Health fields, richest first: drivers before remapped rows (R450) refuse the whole query. */
export const GPU_HEALTH_FIELDS = [
  "ecc.errors.uncorrected.volatile.total",
  "retired_pages.pending",
  "remapped_rows.failure",
] as const;

/**
 * Shell that prints `@@<marker>`, then nvidia-smi's CSV for `index` + `fields` + the health
 * fields, falling back to fewer health fields for older drivers, then `@@<marker>-end`.
 * `@@<marker>-error` marks a query that failed with every field set.
 */
export function gpuQueryScript(marker: string, fields: readonly string[]): string {
  const q = (extra: readonly string[]) =>
    `nvidia-smi --query-gpu=${["index", ...fields, ...extra].join(",")} --format=csv,noheader,nounits 2>&1`;
  return `echo '@@${marker}'
if ! q=$(${q(GPU_HEALTH_FIELDS)}); then
  if ! q=$(${q(GPU_HEALTH_FIELDS.slice(0, 2))}); then
    if ! q=$(${q([])}); then echo '@@${marker}-error'; fi
  fi
fi
printf '%s\n' "$q"
echo '@@${marker}-end'
`;
}

/** nvidia-smi's "not available" spellings across drivers. */
const na = (v: string | undefined) =>
  v === undefined ||
  v === "" ||
  /^\[?(N\/A|Not Supported|Unknown Error|Requested functionality has been deprecated)\]?$/i.test(v);

const yes = (v: string | undefined): boolean | undefined => (na(v) ? undefined : /^(yes|1)$/i.test(v!));

/** Health of each GPU from the trailing health columns of a row (after `fieldsBefore` columns). */
export function parseGpuHealth(index: number, cols: string[], fieldsBefore: number): GpuHealth {
  const [ecc, retired, remapped] = cols.slice(1 + fieldsBefore);
  const eccN = na(ecc) ? undefined : Number(ecc);
  const h: GpuHealth = { index };
  if (eccN !== undefined && Number.isFinite(eccN)) h.eccUncorrected = eccN;
  const r = yes(retired);
  if (r !== undefined) h.retiredPagesPending = r;
  const m = yes(remapped);
  if (m !== undefined) h.remappedRowsFailure = m;
  return h;
}

/** What makes a node unhealthy, in words; empty when nothing is wrong. */
export function gpuFaults(inv: Pick<GpuInventory, "nvidiaSmi" | "error" | "health">): string[] {
  if (!inv.nvidiaSmi) return [];
  if (inv.error) return [`nvidia-smi failed: ${inv.error}`];
  const out: string[] = [];
  for (const h of inv.health ?? []) {
    if (h.eccUncorrected)
      out.push(`GPU ${h.index}: ${h.eccUncorrected} uncorrectable ECC error${h.eccUncorrected === 1 ? "" : "s"}`);
    if (h.retiredPagesPending) out.push(`GPU ${h.index}: memory pages pending retirement (needs a reset)`);
    if (h.remappedRowsFailure) out.push(`GPU ${h.index}: memory row remapping failed`);
  }
  return out;
}

export const GPU_QUERY_FIELDS = ["index", "name", "uuid", "memory.total", "driver_version", "pci.bus_id"] as const;

/**
 * One round trip: whether nvidia-smi exists, the CSV of every GPU, and the CUDA version from the
 * banner (no query field reports it on every driver). Markers start with @@ on lines of their own.
 */
export function gpuInventoryScript(): string {
  return `if ! command -v nvidia-smi >/dev/null 2>&1; then echo '@@nvidia-smi none'; exit 0; fi
${gpuQueryScript("gpus", GPU_QUERY_FIELDS.slice(1))}echo "@@cuda $(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\\([0-9.][0-9.]*\\).*/\\1/p' | head -n 1)"
echo '@@end'
`;
}

const num = (v: string | undefined): number | undefined => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) ? n : undefined;
};

/** The rows between `@@<marker>` and `@@<marker>-end`, and whether the query failed; undefined if absent or cut off. */
export function readGpuSection(lines: string[], marker: string): { rows: string[]; failed: boolean } | undefined {
  const start = lines.indexOf(`@@${marker}`);
  const end = lines.indexOf(`@@${marker}-end`);
  if (start < 0 || end < start) return undefined;
  const body = lines.slice(start + 1, end);
  return { rows: body.filter((l) => l.trim() && !l.startsWith("@@")), failed: body.includes(`@@${marker}-error`) };
}

/** Parse what gpuInventoryScript printed. */
export function parseGpuInventory(stdout: string): GpuInventory {
  const lines = stdout.split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines.includes("@@nvidia-smi none")) return { nvidiaSmi: false, gpus: [] };
  const section = readGpuSection(lines, "gpus");
  if (!section || !lines.includes("@@end")) {
    throw new Error(`incomplete GPU inventory output: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const cuda = lines
    .find((l) => l.startsWith("@@cuda"))
    ?.slice("@@cuda".length)
    .trim();
  const { rows, failed } = section;
  if (failed) return { nvidiaSmi: true, gpus: [], error: rows.join(" ").trim().slice(0, 500) || "nvidia-smi failed" };
  const gpus: DetectedGpu[] = [];
  const health: GpuHealth[] = [];
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
    if (f.length > GPU_QUERY_FIELDS.length) health.push(parseGpuHealth(index, f, GPU_QUERY_FIELDS.length - 1));
  }
  return {
    nvidiaSmi: true,
    gpus,
    ...(driverVersion ? { driverVersion } : {}),
    ...(cuda ? { cudaVersion: cuda } : {}),
    ...(health.length ? { health } : {}),
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
