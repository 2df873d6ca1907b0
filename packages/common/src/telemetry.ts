/** One GPU in one telemetry sample (fields nvidia-smi could not report are left out). */
export interface GpuSample {
  index: number;
  utilPct?: number;
  memUsedMiB?: number;
  memTotalMiB?: number;
  tempC?: number;
  powerW?: number;
}

/** One node's sample of a running attempt, as GET /v1/jobs/:id/metrics returns it. */
export interface TelemetrySampleView {
  at: string;
  attemptId: string;
  node: string;
  gpus: GpuSample[];
  proc?: { cpuPct: number; rssMiB: number };
}

/** One step of a job's progress history, as GET /v1/jobs/:id/progress returns it. */
export interface ProgressSampleView {
  at: string;
  attemptId: string;
  step: number;
  totalSteps?: number;
  loss?: number;
}
