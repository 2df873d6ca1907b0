import type { CostConfig, Logger } from "@trainyard/common";
import { reconcileCost } from "@trainyard/core";
import { connectMongo, createRepos, RedisDocumentLocks, syncIndexes } from "@trainyard/db";
import { type RunningService, startReconciler, startServiceBase, startWorkers } from "@trainyard/runtime";
import { Counter } from "prom-client";
import type { CostDeps } from "./deps";
import { registerCostMetrics } from "./metrics";
import { onJobEvent, runCostTick } from "./usecases/price-jobs";

/**
 * The cost service: prices jobs from truth on every `cost` event and on a schedule, rolls spend up,
 * enforces budgets and job limits, and serves the money metrics. Any number of replicas may run:
 * they share one job scheduler (upserted by each at start), prices are recomputed rather than
 * added up, and alert/stop decisions are claimed by unique inserts.
 */
export async function startCost(config: CostConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("cost", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    ...(logger ? { logger } : {}),
  });
  try {
    await syncIndexes(base.mongo!);
    // No TRAINYARD_SECRET_KEY here: the cost service never opens a secret.
    const repos = createRepos(base.mongo!, undefined, new RedisDocumentLocks(base.redis, config.TRAINYARD_QUEUE_PREFIX));
    const deps: CostDeps = { repos, bus: base.bus, logger: base.logger, intervalMs: config.COST_INTERVAL_MS };
    // Jobs started by an older version are marked for the sweep in the background (once per database).
    void repos.jobCosts.markUnpricedJobs().then(
      (marked) => marked && base.logger.info({ marked }, "jobs started before costPending marked for pricing"),
      (err: Error) => base.logger.warn({ err: err.message }, "could not mark older jobs for pricing; retried at the next start"),
    );

    const received = new Counter({
      name: "trainyard_cost_events_received_total",
      help: "Job lifecycle events received by the cost service, by event",
      labelNames: ["event"] as const,
      registers: [base.registry],
    });
    const metrics = registerCostMetrics(
      base.registry,
      async () => {
        const now = new Date();
        const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
        const [jobCounts, activeJobs, monthJobs, budgets] = await Promise.all([
          repos.jobCosts.countByLabels(),
          repos.jobCosts.listActive(),
          repos.jobCosts.listRunSince(monthStart),
          repos.budgets.listEnabled(),
        ]);
        return { jobCounts, activeJobs, monthJobs, budgets, now };
      },
      { maxAgeMs: config.COST_METRICS_MAX_AGE_MS },
    );

    const workers = startWorkers({
      service: "cost",
      connection: base.redis,
      prefix: config.TRAINYARD_QUEUE_PREFIX,
      logger: base.logger,
      registry: base.registry,
      concurrency: { cost: config.COST_CONCURRENCY },
      handlers: {
        cost: async (p) => {
          received.inc({ event: p.event });
          if (p.jobId) {
            await onJobEvent(deps, p.jobId);
            return;
          }
          try {
            await runCostTick(deps);
            metrics.ticks.inc({ outcome: "ok" });
          } catch (err) {
            metrics.ticks.inc({ outcome: "error" });
            throw err;
          }
        },
      },
    });
    base.onClose(() => workers.close());

    // One tick scheduler per installation, upserted at start (the latest COST_INTERVAL_MS wins) and
    // re-created by every later sweep if Redis lost it.
    await reconcileCost(base.bus, config.COST_INTERVAL_MS, true);
    const reconciler = startReconciler({
      intervalMs: config.RECONCILE_INTERVAL_MS,
      sweep: () => reconcileCost(base.bus, config.COST_INTERVAL_MS),
      logger: base.logger,
      registry: base.registry,
    });
    base.onClose(() => reconciler.stop());

    const port = await base.listen();
    return { port, close: () => base.close() };
  } catch (err) {
    await base.close().catch(() => undefined);
    throw err;
  }
}
