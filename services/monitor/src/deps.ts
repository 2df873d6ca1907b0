import type { Logger } from "@trainyard/common";
import type { NodeGateway } from "@trainyard/core";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import type { GpuMetrics } from "./gpu-metrics";

export interface MonitorDeps {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
  intervalMs: number;
  lostAfterMisses: number;
  telemetry: { maxSamplesPerJob: number; idleUtilPct: number; idleSeconds: number; metrics: GpuMetrics };
}
