import { type Logger, QUEUES, type QueueName, type QueuePayload, queuesConsumedBy, type ServiceName } from "@trainyard/common";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { Counter, Histogram, type Registry } from "prom-client";

export type Handlers = { [Q in QueueName]?: (payload: QueuePayload<Q>, job: Job) => Promise<void> };

export interface WorkerGroup {
  workers: Worker[];
  /** Stop taking work and wait for active handlers to finish. */
  close(): Promise<void>;
}

/**
 * The startup check of the queue catalog: a service must handle exactly the queues the catalog
 * assigns to it — none missing, none extra.
 */
export function assertHandlersMatchCatalog(service: ServiceName, handlers: Handlers): void {
  const expected = new Set(queuesConsumedBy(service));
  const given = new Set(Object.keys(handlers) as QueueName[]);
  const missing = [...expected].filter((q) => !given.has(q));
  const extra = [...given].filter((q) => !expected.has(q));
  if (missing.length || extra.length) {
    throw new Error(
      `${service}: queue handlers do not match the catalog` +
        (missing.length ? `; missing: ${missing.join(", ")}` : "") +
        (extra.length ? `; not assigned to ${service}: ${extra.join(", ")}` : ""),
    );
  }
}

export function startWorkers(opts: {
  service: ServiceName;
  handlers: Handlers;
  connection: Redis;
  prefix: string;
  concurrency: Partial<Record<QueueName, number>>;
  logger: Logger;
  registry: Registry;
}): WorkerGroup {
  assertHandlersMatchCatalog(opts.service, opts.handlers);
  const processed = new Counter({
    name: "trainyard_queue_messages_processed_total",
    help: "Queue messages handled by this service, by queue and outcome",
    labelNames: ["queue", "outcome"] as const,
    registers: [opts.registry],
  });
  const duration = new Histogram({
    name: "trainyard_queue_handler_duration_seconds",
    help: "Time spent handling one queue message",
    labelNames: ["queue"] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [opts.registry],
  });

  const workers = (Object.keys(opts.handlers) as QueueName[]).map((name) => {
    const handler = opts.handlers[name] as (p: unknown, j: Job) => Promise<void>;
    const worker = new Worker(
      name,
      async (job: Job) => {
        const parsed = QUEUES[name].payload.safeParse(job.data);
        if (!parsed.success) {
          processed.inc({ queue: name, outcome: "invalid" });
          // A malformed message will never become valid: don't retry it.
          throw new UnrecoverableError(`invalid ${name} payload: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
        }
        const end = duration.startTimer({ queue: name });
        try {
          await handler(parsed.data, job);
          processed.inc({ queue: name, outcome: "ok" });
        } catch (err) {
          processed.inc({ queue: name, outcome: "error" });
          throw err;
        } finally {
          end();
        }
      },
      { connection: opts.connection, prefix: opts.prefix, concurrency: opts.concurrency[name] ?? 1, autorun: true },
    );
    worker.on("failed", (job, err) =>
      opts.logger.warn({ queue: name, jobId: job?.id, err: err.message }, "queue message failed"),
    );
    worker.on("error", (err) => opts.logger.error({ queue: name, err: err.message }, "worker error"));
    return worker;
  });

  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
