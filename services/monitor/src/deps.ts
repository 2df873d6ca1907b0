import type { Logger } from "@trainyard/common";
import type { NodeGateway } from "@trainyard/core";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import type { CheckMetrics } from "./check-metrics";
import type { GpuMetrics } from "./gpu-metrics";

export interface MonitorDeps {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
  intervalMs: number;
  /** A check that changes no node state writes the attempt's freshness only once this much older. */
  statusWriteMs: number;
  lostAfterMisses: number;
  /**
   * `<clusterId>/<node>` of this replica's node probes still waiting for an answer: the next check
   * leaves such a node (and its attempts) to the check that is waiting for it.
   */
  probesInFlight: Set<string>;
  checks: CheckMetrics;
  telemetry: { maxSamplesPerJob: number; idleUtilPct: number; idleSeconds: number; metrics: GpuMetrics };
}
