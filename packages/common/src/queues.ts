import { z } from "zod";

const objectId = z.string().regex(/^[0-9a-f]{24}$/, "must be a 24-hex-digit id");

export type ServiceName = "api" | "launcher" | "monitor" | "cost" | "alerting";

/**
 * Every queue Trainyard uses: its payload schema, default job options, who may produce to it and
 * which service consumes it. Names are part of the deployed contract: never rename one.
 * Payloads carry ids only, never secrets.
 */
export const QUEUES = {
  /** Try to start a QUEUED job (or a RETRYING one's next attempt). */
  launch: {
    payload: z.object({ jobId: objectId }).strict(),
    producers: ["api", "launcher", "monitor"],
    consumer: "launcher",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Stop an attempt (cancel, failure teardown, budget stop) as recorded in the job's stopRequest. */
  control: {
    payload: z.object({ jobId: objectId, attemptId: z.string().min(1).max(64) }).strict(),
    producers: ["api", "monitor", "cost"],
    consumer: "launcher",
    defaults: { attempts: 10, backoff: { type: "exponential", delay: 2000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** One health/progress check of a running attempt; re-scheduled by the monitor itself. */
  monitor: {
    payload: z.object({ jobId: objectId, attemptId: z.string().min(1).max(64) }).strict(),
    producers: ["launcher", "monitor"],
    consumer: "monitor",
    defaults: { attempts: 3, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Job lifecycle events for cost accounting. */
  cost: {
    payload: z.object({ jobId: objectId, event: z.enum(["started", "ended", "tick"]), at: z.string().datetime() }).strict(),
    producers: ["launcher", "monitor"],
    consumer: "cost",
    defaults: { attempts: 3, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Alert events to deliver. */
  alerts: {
    payload: z
      .object({
        type: z.enum(["job.failed", "job.succeeded", "job.cancelled", "node.hostkey_mismatch"]),
        severity: z.enum(["info", "warning", "critical"]),
        jobId: objectId.optional(),
        clusterId: objectId.optional(),
        message: z.string().max(2000),
        at: z.string().datetime(),
      })
      .strict(),
    producers: ["launcher", "monitor", "api"],
    consumer: "alerting",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
} as const satisfies Record<
  string,
  {
    payload: z.ZodType;
    producers: readonly ServiceName[];
    consumer: ServiceName;
    defaults: Record<string, unknown>;
  }
>;

export type QueueName = keyof typeof QUEUES;
export type QueuePayload<Q extends QueueName> = z.infer<(typeof QUEUES)[Q]["payload"]>;
export const QUEUE_NAMES = Object.keys(QUEUES) as QueueName[];

/** The queues a service must consume, from the catalog. */
export function queuesConsumedBy(service: ServiceName): QueueName[] {
  return QUEUE_NAMES.filter((q) => QUEUES[q].consumer === service);
}

export function parsePayload<Q extends QueueName>(queue: Q, data: unknown): QueuePayload<Q> {
  return QUEUES[queue].payload.parse(data) as QueuePayload<Q>;
}
