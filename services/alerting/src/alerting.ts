import type { Logger, WorkerConfig } from "@trainyard/common";
import { type RunningService, startServiceBase, startWorkers } from "@trainyard/runtime";
import { Counter } from "prom-client";

/**
 * The alerting service. In this build it consumes alert events, logs them and counts them;
 * delivery channels (webhook, Slack, email) are not implemented yet, and nothing is reported as sent.
 */
export async function startAlerting(config: WorkerConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("alerting", config, logger ? { logger } : {});
  const received = new Counter({
    name: "trainyard_alert_events_received_total",
    help: "Alert events received by the alerting service, by type and severity",
    labelNames: ["type", "severity"] as const,
    registers: [base.registry],
  });
  const workers = startWorkers({
    service: "alerting",
    connection: base.redis,
    prefix: config.TRAINYARD_QUEUE_PREFIX,
    logger: base.logger,
    registry: base.registry,
    concurrency: { alerts: 4 },
    handlers: {
      alerts: async (p) => {
        received.inc({ type: p.type, severity: p.severity });
        base.logger.info(
          { type: p.type, severity: p.severity, jobId: p.jobId, message: p.message },
          "alert event (no delivery channels yet)",
        );
      },
    },
  });
  base.onClose(() => workers.close());
  const port = await base.listen();
  return { port, close: () => base.close() };
}
