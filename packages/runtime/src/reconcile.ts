import type { Logger } from "@trainyard/common";
import { Counter, type Registry } from "prom-client";

export interface ReconcilerHandle {
  /** Run one sweep now (also what the timer does); resolves when it ends. Sweeps never overlap. */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Run a service's reconcile sweep once at start and then every `intervalMs`: the sweep rebuilds
 * from MongoDB whatever messages Redis lost (see @trainyard/core reconcile.ts). A failed sweep is
 * logged and counted; the next one tries again. A sweep still running when the timer fires is not
 * doubled.
 */
export function startReconciler(opts: {
  intervalMs: number;
  sweep: () => Promise<void>;
  logger: Logger;
  registry: Registry;
}): ReconcilerHandle {
  const sweeps = new Counter({
    name: "trainyard_reconcile_sweeps_total",
    help: "Reconcile sweeps of this service (rebuilding lost queue messages from the database), by outcome",
    labelNames: ["outcome"] as const,
    registers: [opts.registry],
  });
  let running: Promise<void> | undefined;
  let stopped = false;
  const runOnce = (): Promise<void> => {
    if (running) return running;
    running = opts
      .sweep()
      .then(
        () => sweeps.inc({ outcome: "ok" }),
        (err) => {
          sweeps.inc({ outcome: "error" });
          opts.logger.warn({ err: (err as Error).message }, "reconcile sweep failed; the next one retries");
        },
      )
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void runOnce();
  }, opts.intervalMs);
  timer.unref();
  void runOnce();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
