import type { Logger, MonitorConfig } from "@trainyard/common";
import { openNodeAccess } from "@trainyard/core";
import { connectMongo } from "@trainyard/db";
import { type RunningService, startServiceBase, startWorkers } from "@trainyard/runtime";
import type { MonitorDeps } from "./deps";
import { GpuMetrics } from "./gpu-metrics";
import { checkAttempt, rearmChecks } from "./usecases/check-attempt";
import { storeCheckpoint } from "./usecases/store-checkpoint";

/** The monitor: consumes `monitor` (one check of one running attempt; it re-schedules itself). */
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
    lostAfterMisses: config.NODE_LOST_AFTER_MISSES,
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
    concurrency: { monitor: config.MONITOR_CONCURRENCY, checkpoints: 2 },
    handlers: {
      monitor: (p) => checkAttempt(deps, p.jobId, p.attemptId),
      checkpoints: (p) => storeCheckpoint(deps, p.jobId, p.checkpointId),
    },
  });
  // Safety net: re-arm checks of RUNNING attempts whose chain of monitor messages broke
  // (a check that failed all its retries, or a Redis that was rebuilt).
  const rearm = setInterval(() => {
    rearmChecks(deps).catch((err) => base.logger.warn({ err: (err as Error).message }, "monitor re-arm failed"));
  }, config.MONITOR_INTERVAL_MS * 3);
  rearm.unref();
  base.onClose(async () => {
    clearInterval(rearm);
    await workers.close();
  });
  const port = await base.listen();
  return { port, close: () => base.close() };
}
