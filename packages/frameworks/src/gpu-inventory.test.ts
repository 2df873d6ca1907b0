import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gpuFaults, gpuInventoryScript, inventoryMismatch, parseGpuInventory } from "./gpu-inventory";

/** `nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version,pci.bus_id --format=csv,noheader,nounits`, as drivers print it. */
const CSV = {
  h100_535: [
    "0, NVIDIA H100 80GB HBM3, GPU-3b1c9f62-8a4e-2f7d-9c1e-5d6a7b8c9d01, 81559, 535.129.03, 00000000:18:00.0",
    "1, NVIDIA H100 80GB HBM3, GPU-4c2d0a73-9b5f-3a8e-0d2f-6e7b8c9d0e12, 81559, 535.129.03, 00000000:2A:00.0",
  ],
  v100_470: ["0, Tesla V100-SXM2-16GB, GPU-8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b, 16160, 470.82.01, 00000000:00:1E.0"],
  a100_525: [
    "0, NVIDIA A100-SXM4-40GB, GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809, 40960, 525.85.12, 00000000:07:00.0",
    "1, NVIDIA A100-SXM4-40GB, GPU-2b3c4d5e-6f70-8192-a3b4-c5d6e7f8091a, 40960, 525.85.12, 00000000:0F:00.0",
  ],
  // A GPU that has fallen off the bus reports [N/A] and [Unknown Error] fields.
  rtx4090_550_na: ["0, NVIDIA GeForce RTX 4090, GPU-9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9, [N/A], 550.54.14, 00000000:01:00.0"],
};
const banner = (driver: string, cuda: string) =>
  `| NVIDIA-SMI ${driver}             Driver Version: ${driver}   CUDA Version: ${cuda}     |`;

const out = (rows: string[], cuda?: string) =>
  ["@@gpus", ...rows, "@@gpus-end", ...(cuda ? [`@@cuda ${cuda}`] : ["@@cuda "]), "@@end"].join("\n");

describe("parseGpuInventory", () => {
  it("reads count, model, memory, driver and CUDA version across driver versions", () => {
    expect(parseGpuInventory(out(CSV.h100_535, "12.2"))).toEqual({
      nvidiaSmi: true,
      driverVersion: "535.129.03",
      cudaVersion: "12.2",
      gpus: [
        {
          index: 0,
          name: "NVIDIA H100 80GB HBM3",
          uuid: "GPU-3b1c9f62-8a4e-2f7d-9c1e-5d6a7b8c9d01",
          memoryMiB: 81559,
          pciBusId: "00000000:18:00.0",
        },
        {
          index: 1,
          name: "NVIDIA H100 80GB HBM3",
          uuid: "GPU-4c2d0a73-9b5f-3a8e-0d2f-6e7b8c9d0e12",
          memoryMiB: 81559,
          pciBusId: "00000000:2A:00.0",
        },
      ],
    });
    expect(parseGpuInventory(out(CSV.v100_470, "11.4"))).toMatchObject({ driverVersion: "470.82.01", cudaVersion: "11.4" });
    expect(parseGpuInventory(out(CSV.a100_525)).gpus.map((g) => g.memoryMiB)).toEqual([40960, 40960]);
    const na = parseGpuInventory(out(CSV.rtx4090_550_na, "12.4"));
    expect(na.gpus[0]).toEqual({
      index: 0,
      name: "NVIDIA GeForce RTX 4090",
      uuid: expect.any(String),
      pciBusId: "00000000:01:00.0",
    });
  });

  it("tells no nvidia-smi, a failing nvidia-smi and cut-off output apart", () => {
    expect(parseGpuInventory("@@nvidia-smi none\n")).toEqual({ nvidiaSmi: false, gpus: [] });
    const failed = parseGpuInventory(
      "@@gpus\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n@@gpus-error\n@@gpus-end\n@@cuda \n@@end\n",
    );
    expect(failed).toMatchObject({
      nvidiaSmi: true,
      gpus: [],
      error: expect.stringMatching(/couldn't communicate with the NVIDIA driver/),
    });
    expect(() => parseGpuInventory("@@gpus\n0, NVIDIA H100")).toThrow(/incomplete/);
    expect(parseGpuInventory(out(["garbage"])).error).toMatch(/unexpected nvidia-smi line/);
  });
});

describe("GPU health (uncorrectable ECC, pending page retirement, failed row remapping)", () => {
  // The inventory rows with the health columns appended, as each driver generation answers them.
  const healthy = {
    a100_525: "0, NVIDIA A100-SXM4-40GB, GPU-1a2b, 40960, 525.85.12, 00000000:07:00.0, 0, [N/A], No",
    v100_470: "0, Tesla V100-SXM2-16GB, GPU-8f1e, 16160, 470.82.01, 00000000:00:1E.0, 0, No, [N/A]",
    t4_418_no_remap: "0, Tesla T4, GPU-77aa, 15109, 418.87.01, 00000000:00:04.0, 0, No",
    rtx_no_ecc: "0, NVIDIA GeForce RTX 4090, GPU-9e8d, 24564, 550.54.14, 00000000:01:00.0, [N/A], [N/A], [N/A]",
  };
  it("reads each driver's columns and finds nothing wrong on healthy GPUs", () => {
    for (const row of Object.values(healthy)) {
      const inv = parseGpuInventory(out([row]));
      expect(inv.health).toHaveLength(1);
      expect(gpuFaults(inv)).toEqual([]);
    }
    expect(parseGpuInventory(out([healthy.a100_525])).health).toEqual([
      { index: 0, eccUncorrected: 0, remappedRowsFailure: false },
    ]);
    expect(parseGpuInventory(out([healthy.rtx_no_ecc])).health).toEqual([{ index: 0 }]);
  });
  it("names every fault per GPU; a failing nvidia-smi is a fault, a missing one is not", () => {
    const inv = parseGpuInventory(
      out([
        "0, NVIDIA A100-SXM4-80GB, GPU-aa, 81920, 535.129.03, 00000000:07:00.0, 2, [N/A], Yes",
        "1, Tesla V100-SXM2-16GB, GPU-bb, 16160, 535.129.03, 00000000:08:00.0, 1, Yes, [N/A]",
      ]),
    );
    expect(gpuFaults(inv)).toEqual([
      "GPU 0: 2 uncorrectable ECC errors",
      "GPU 0: memory row remapping failed",
      "GPU 1: 1 uncorrectable ECC error",
      "GPU 1: memory pages pending retirement (needs a reset)",
    ]);
    expect(
      gpuFaults({ nvidiaSmi: true, error: "Unable to determine the device handle for GPU0000:18:00.0: Unknown Error" }),
    ).toEqual(["nvidia-smi failed: Unable to determine the device handle for GPU0000:18:00.0: Unknown Error"]);
    expect(gpuFaults({ nvidiaSmi: false })).toEqual([]);
  });
});

describe("inventoryMismatch", () => {
  const inv = (rows: string[]) => parseGpuInventory(out(rows, "12.2"));
  it("matches the declared model by name, whatever the vendor prefix and punctuation", () => {
    expect(inventoryMismatch({ gpus: 2, gpuType: "h100" }, inv(CSV.h100_535))).toEqual([]);
    expect(inventoryMismatch({ gpus: 2, gpuType: "A100-SXM4" }, inv(CSV.a100_525))).toEqual([]);
    expect(inventoryMismatch({ gpus: 1, gpuType: "v100" }, inv(CSV.v100_470))).toEqual([]);
    expect(inventoryMismatch({ gpus: 1, gpuType: "rtx4090" }, inv(CSV.rtx4090_550_na))).toEqual([]);
  });
  it("names each difference: count, model, no nvidia-smi, a failing one", () => {
    expect(inventoryMismatch({ gpus: 8, gpuType: "h100" }, inv(CSV.a100_525))).toEqual([
      "declared 8 GPUs, nvidia-smi lists 2",
      "declared gpuType 'h100', nvidia-smi reports 'NVIDIA A100-SXM4-40GB'",
    ]);
    expect(inventoryMismatch({ gpus: 2, gpuType: "h100" }, { nvidiaSmi: false, gpus: [] })).toEqual([
      "declared 2 x h100, but the node has no nvidia-smi",
    ]);
    expect(inventoryMismatch({ gpus: 2, gpuType: "h100" }, { nvidiaSmi: true, gpus: [], error: "no driver" })).toEqual([
      "nvidia-smi failed: no driver",
    ]);
  });
  it("a CPU node expects no GPU", () => {
    expect(inventoryMismatch({ gpus: 2, gpuType: "cpu" }, { nvidiaSmi: false, gpus: [] })).toEqual([]);
  });
});

describe("gpuInventoryScript", () => {
  /** Run the script with a fake nvidia-smi (or none) first on PATH. */
  function run(fake?: { csv: string[]; exit?: number; banner?: string; legacy?: boolean }) {
    const dir = mkdtempSync(join(tmpdir(), "ty-smi-"));
    if (fake) {
      writeFileSync(join(dir, "rows"), `${fake.csv.join("\n")}\n`);
      writeFileSync(join(dir, "banner"), `${fake.banner ?? ""}\n`);
      writeFileSync(
        join(dir, "nvidia-smi"),
        // A legacy driver (before R450) refuses the whole query when it names remapped_rows.
        `#!/bin/sh\nd=$(dirname "$0")\ncase "$1" in${fake.legacy ? ` *remapped_rows*) echo 'Field "remapped_rows.failure" is not a valid field to query.'; exit 2;;` : ""} --query-gpu=*) cat "$d/rows"; exit ${fake.exit ?? 0};; esac\ncat "$d/banner"\n`,
      );
      chmodSync(join(dir, "nvidia-smi"), 0o755);
    }
    return execFileSync("/bin/sh", ["-c", gpuInventoryScript()], { encoding: "utf8", env: { PATH: `${dir}:/usr/bin:/bin` } });
  }

  it("collects the CSV and the CUDA version from the banner in one run", () => {
    const inv = parseGpuInventory(run({ csv: CSV.h100_535, banner: banner("535.129.03", "12.2") }));
    expect(inv).toMatchObject({ nvidiaSmi: true, driverVersion: "535.129.03", cudaVersion: "12.2" });
    expect(inv.gpus).toHaveLength(2);
  });
  it("reports a node without nvidia-smi, and nvidia-smi's own error when it fails", () => {
    expect(parseGpuInventory(run())).toEqual({ nvidiaSmi: false, gpus: [] });
    const inv = parseGpuInventory(
      run({ csv: ["Unable to determine the device handle for GPU0000:18:00.0: Unknown Error"], exit: 15 }),
    );
    expect(inv.error).toMatch(/Unknown Error/);
  });
  it("falls back to the health fields an older driver knows", () => {
    const inv = parseGpuInventory(
      run({ csv: ["0, Tesla T4, GPU-77aa, 15109, 418.87.01, 00000000:00:04.0, 0, Yes"], legacy: true }),
    );
    expect(inv.error).toBeUndefined();
    expect(gpuFaults(inv)).toEqual(["GPU 0: memory pages pending retirement (needs a reset)"]);
  });
});
