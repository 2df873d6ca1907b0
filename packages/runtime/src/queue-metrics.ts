import { QUEUE_NAMES } from "@trainyard/common";
import { Gauge, type Registry } from "prom-client";
import type { QueueBus } from "./bus";

export const QUEUE_DEPTH_STATES = ["waiting", "active", "delayed", "prioritized", "failed"] as const;

/**
 * `trainyard_queue_depth{queue, state}`: messages per queue of the catalog and state, read from
 * Redis at scrape time (so any process holding a bus can serve it; the API does).
 */
export function registerQueueDepthMetrics(registry: Registry, bus: QueueBus): Gauge<"queue" | "state"> {
  return new Gauge({
    name: "trainyard_queue_depth",
    help: "Messages in each queue by state (waiting, active, delayed, prioritized, failed)",
    labelNames: ["queue", "state"] as const,
    registers: [registry],
    async collect() {
      const counts = await Promise.all(QUEUE_NAMES.map((q) => bus.queue(q).getJobCounts(...QUEUE_DEPTH_STATES)));
      this.reset();
      QUEUE_NAMES.forEach((queue, i) => {
        for (const state of QUEUE_DEPTH_STATES) this.set({ queue, state }, counts[i]?.[state] ?? 0);
      });
    },
  });
}
