import type { Logger, WorkerConfig } from "@trainyard/common";
import { type RunningService, startServiceBase, startWorkers } from "@trainyard/runtime";
import { Counter } from "prom-client";

/**
 * The cost service. In this build it consumes job lifecycle events and counts them; pricing,
 * roll-ups and budgets are not implemented yet, and nothing here claims a cost.
 */
export async function startCost(config: WorkerConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("cost", config, logger ? { logger } : {});
  const received = new Counter({
    name: "trainyard_cost_events_received_total",
    help: "Job lifecycle events received by the cost service, by event",
    labelNames: ["event"] as const,
    registers: [base.registry],
  });
  const workers = startWorkers({
    service: "cost",
    connection: base.redis,
    prefix: config.TRAINYARD_QUEUE_PREFIX,
    logger: base.logger,
    registry: base.registry,
    concurrency: { cost: 4 },
    handlers: {
      cost: async (p) => {
        received.inc({ event: p.event });
        base.logger.debug({ jobId: p.jobId, event: p.event }, "job event received (pricing not implemented yet)");
      },
    },
  });
  base.onClose(() => workers.close());
  const port = await base.listen();
  return { port, close: () => base.close() };
}
