import type { GpuSample } from "@trainyard/common";
import { Gauge, type Registry } from "prom-client";

interface NodeSample {
  at: number;
  labels: { team: string; project: string; job_id: string; node: string };
  gpus: GpuSample[];
  proc?: { cpuPct: number; rssMiB: number };
}

/**
 * GPU and process series of running attempts, from the samples this replica took. A series lasts
 * `freshMs` after its last sample, so a finished job's series go away on their own; with several
 * monitor replicas, aggregate by the job/node/gpu labels (max) across instances.
 */
export class GpuMetrics {
  private readonly latest = new Map<string, NodeSample>();

  constructor(
    registry: Registry,
    private readonly freshMs: number,
  ) {
    const nodeLabels = ["team", "project", "job_id", "node"] as const;
    const gpuLabels = [...nodeLabels, "gpu"] as const;
    const gpuGauge = (name: string, help: string, value: (g: GpuSample) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: gpuLabels,
        registers: [registry],
        collect: function (this: Gauge<(typeof gpuLabels)[number]>) {
          this.reset();
          for (const s of fresh()) {
            for (const g of s.gpus) {
              const v = value(g);
              if (v !== undefined) this.set({ ...s.labels, gpu: String(g.index) }, v);
            }
          }
        },
      });
    const fresh = () => this.fresh();
    gpuGauge("trainyard_gpu_utilization_percent", "GPU utilisation of a running job's GPU (nvidia-smi)", (g) => g.utilPct);
    gpuGauge("trainyard_gpu_memory_used_bytes", "GPU memory used on a running job's GPU", (g) =>
      g.memUsedMiB === undefined ? undefined : g.memUsedMiB * 1024 * 1024,
    );
    gpuGauge("trainyard_gpu_temperature_celsius", "Temperature of a running job's GPU", (g) => g.tempC);
    gpuGauge("trainyard_gpu_power_watts", "Power draw of a running job's GPU", (g) => g.powerW);
    const procGauge = (name: string, help: string, value: (p: { cpuPct: number; rssMiB: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: nodeLabels,
        registers: [registry],
        collect: function (this: Gauge<(typeof nodeLabels)[number]>) {
          this.reset();
          for (const s of fresh()) if (s.proc) this.set(s.labels, value(s.proc));
        },
      });
    procGauge(
      "trainyard_job_process_cpu_percent",
      "CPU of a running job's processes on a node (100 = one core)",
      (p) => p.cpuPct,
    );
    procGauge(
      "trainyard_job_process_memory_bytes",
      "Resident memory of a running job's processes on a node",
      (p) => p.rssMiB * 1024 * 1024,
    );
  }

  record(sample: Omit<NodeSample, "at">, at = Date.now()): void {
    this.latest.set(`${sample.labels.job_id}/${sample.labels.node}`, { ...sample, at });
  }

  private fresh(): NodeSample[] {
    const now = Date.now();
    for (const [key, s] of this.latest) if (now - s.at > this.freshMs) this.latest.delete(key);
    return [...this.latest.values()];
  }
}
