import type { LauncherConfig, Logger } from "@trainyard/common";
import { newLeaseOwner, openNodeAccess, reconcileLauncher } from "@trainyard/core";
import { connectMongo } from "@trainyard/db";
import { OneAtATime, type RunningService, startReconciler, startServiceBase, startWorkers } from "@trainyard/runtime";
import type { LauncherDeps } from "./deps";
import { launchJob, schedulingPass } from "./usecases/launch-job";
import { stopAttempt } from "./usecases/stop-attempt";

/** The launcher: consumes `schedule`, `launch` and `control`, and reconciles launches with the database on a timer. */
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
    lease: { owner: newLeaseOwner("launcher"), ms: config.LAUNCH_LEASE_MS },
  };
  base.onClose(() => ssh.close());

  const passes = new OneAtATime(base.redis, config.TRAINYARD_QUEUE_PREFIX);
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
      // One pass per cluster at a time across replicas; requests meanwhile make the running one go again.
      schedule: (p) =>
        passes.run(`schedule:${p.clusterId}`, async () => {
          await schedulingPass(deps, p.clusterId);
        }),
      control: (p) => stopAttempt(deps, p.jobId, p.attemptId),
    },
  });
  const reconciler = startReconciler({
    intervalMs: config.RECONCILE_INTERVAL_MS,
    sweep: () => reconcileLauncher(deps, { lease: deps.lease, intervalMs: config.RECONCILE_INTERVAL_MS }),
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
