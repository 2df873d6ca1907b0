import type { LauncherConfig, Logger } from "@trainyard/common";
import { cleanUpHeldAllocations, openNodeAccess } from "@trainyard/core";
import { connectMongo } from "@trainyard/db";
import { type RunningService, startServiceBase, startWorkers } from "@trainyard/runtime";
import type { LauncherDeps } from "./deps";
import { launchJob, schedulingPass, sweepQueuedJobs } from "./usecases/launch-job";
import { stopAttempt } from "./usecases/stop-attempt";

/** The launcher: consumes `schedule`, `launch` and `control`, and sweeps QUEUED jobs on a timer. */
export async function startLauncher(config: LauncherConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("launcher", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    ...(logger ? { logger } : {}),
  });
  const { repos, ssh, gateway } = openNodeAccess(config, base.mongo!, base.redis, base.logger);
  const deps: LauncherDeps = {
    repos,
    bus: base.bus,
    gateway,
    logger: base.logger,
    monitorIntervalMs: config.MONITOR_INTERVAL_MS,
  };
  base.onClose(() => ssh.close());

  const workers = startWorkers({
    service: "launcher",
    connection: base.redis,
    prefix: config.TRAINYARD_QUEUE_PREFIX,
    logger: base.logger,
    registry: base.registry,
    // A pass starts every attempt it admits concurrently, so one pass at a time per replica.
    concurrency: { launch: config.LAUNCHER_CONCURRENCY, control: config.LAUNCHER_CONCURRENCY, schedule: 1 },
    handlers: {
      launch: (p) => launchJob(deps, p.jobId),
      schedule: async (p) => {
        await schedulingPass(deps, p.clusterId);
      },
      control: (p) => stopAttempt(deps, p.jobId, p.attemptId),
    },
  });
  const sweep = setInterval(() => {
    sweepQueuedJobs(deps).catch((err) => base.logger.warn({ err: (err as Error).message }, "queued-job sweep failed"));
    cleanUpHeldAllocations(deps).catch((err) =>
      base.logger.warn({ err: (err as Error).message }, "held-allocation clean-up failed"),
    );
  }, config.SCHEDULER_SWEEP_MS);
  sweep.unref();
  base.onClose(async () => {
    clearInterval(sweep);
    await workers.close();
  });
  const port = await base.listen();
  return { port, close: () => base.close() };
}
