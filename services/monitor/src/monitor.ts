import type { Logger, MonitorConfig } from "@trainyard/common";
import { openNodeAccess, reconcileMonitor } from "@trainyard/core";
import { connectMongo } from "@trainyard/db";
import { type RunningService, startReconciler, startServiceBase, startWorkers } from "@trainyard/runtime";
import { CheckMetrics } from "./check-metrics";
import type { MonitorDeps } from "./deps";
import { GpuMetrics } from "./gpu-metrics";
import { checkCluster, watchAttempt } from "./usecases/check-cluster";
import { storeCheckpoint } from "./usecases/store-checkpoint";

/**
 * The monitor: consumes `cluster-checks` (one check of every running attempt of a cluster, one
 * probe per node; it re-schedules itself) and `monitor` (an attempt started: its cluster is checked).
 */
export async function startMonitor(config: MonitorConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("monitor", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    ...(logger ? { logger } : {}),
  });
  const { repos, ssh, gateway } = openNodeAccess(config, base.mongo!, base.redis, base.logger);
  const deps: MonitorDeps = {
    repos,
    bus: base.bus,
    gateway,
    logger: base.logger,
    intervalMs: config.MONITOR_INTERVAL_MS,
    // Half an interval short of N intervals: checks come about an interval apart, give or take.
    statusWriteMs: (config.MONITOR_STATUS_WRITE_INTERVALS - 0.5) * config.MONITOR_INTERVAL_MS,
    checks: new CheckMetrics(base.registry, config.MONITOR_INTERVAL_MS),
    lostAfterMisses: config.NODE_LOST_AFTER_MISSES,
    probesInFlight: new Set(),
    telemetry: {
      maxSamplesPerJob: config.TELEMETRY_MAX_SAMPLES_PER_JOB,
      idleUtilPct: config.GPU_IDLE_UTIL_PCT,
      idleSeconds: config.GPU_IDLE_SECONDS,
      metrics: new GpuMetrics(base.registry, config.MONITOR_INTERVAL_MS * 3),
    },
  };
  base.onClose(() => ssh.close());
  const workers = startWorkers({
    service: "monitor",
    connection: base.redis,
    prefix: config.TRAINYARD_QUEUE_PREFIX,
    logger: base.logger,
    registry: base.registry,
    concurrency: { "cluster-checks": config.MONITOR_CONCURRENCY, monitor: 2, checkpoints: 2 },
    handlers: {
      "cluster-checks": (p) => checkCluster(deps, p.clusterId),
      monitor: (p) => watchAttempt(deps, p.jobId, p.attemptId),
      checkpoints: (p) => storeCheckpoint(deps, p.jobId, p.checkpointId),
    },
  });
  // Every cluster running something keeps a scheduled check, even after Redis lost its messages.
  const reconciler = startReconciler({
    intervalMs: config.RECONCILE_INTERVAL_MS,
    sweep: async () => {
      await reconcileMonitor(deps, config.MONITOR_INTERVAL_MS);
    },
    logger: base.logger,
    registry: base.registry,
  });
  base.onClose(async () => {
    await reconciler.stop();
    await workers.close();
  });
  const port = await base.listen();
  return { port, close: () => base.close() };
}
