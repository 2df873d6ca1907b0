import { z } from "zod";
import { alertTypeSchema, dedupKeySchema, severitySchema } from "./alerts";
import { nameSchema } from "./names";

const objectId = z.string().regex(/^[0-9a-f]{24}$/, "must be a 24-hex-digit id");

export type ServiceName = "api" | "launcher" | "monitor" | "cost" | "alerting";

/**
 * Every queue Trainyard uses: its payload schema, default job options, who may produce to it and
 * which service consumes it. Names are part of the deployed contract: never rename one.
 * Payloads carry ids only, never secrets. `producers` is enforced: a service's bus refuses to send
 * to a queue that does not list it (see QueueBus), so this table cannot drift from the code.
 * Ending an attempt (core finishAttempt: cost event, retry launch, alert, scheduling pass) happens
 * in every service but alerting, so those queues list all four.
 */
export const QUEUES = {
  /**
   * A job may be startable (a retry's backoff is over, a message from before the scheduler): the
   * launcher asks for a scheduling pass of the job's cluster; it never starts the job itself.
   */
  launch: {
    payload: z.object({ jobId: objectId }).strict(),
    producers: ["api", "launcher", "monitor", "cost"],
    consumer: "launcher",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Stop an attempt (cancel, failure teardown, budget stop) as recorded in the job's stopRequest. */
  control: {
    payload: z.object({ jobId: objectId, attemptId: z.string().min(1).max(64) }).strict(),
    producers: ["api", "launcher", "monitor", "cost"],
    consumer: "launcher",
    defaults: { attempts: 10, backoff: { type: "exponential", delay: 2000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /**
   * An attempt started (sent by the launcher, one interval after): the monitor makes sure the
   * attempt's cluster has its next check scheduled (`cluster-checks`), which from then on checks it.
   */
  monitor: {
    payload: z.object({ jobId: objectId, attemptId: z.string().min(1).max(64) }).strict(),
    producers: ["launcher"],
    consumer: "monitor",
    defaults: { attempts: 3, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /**
   * Job lifecycle events for cost accounting: `started`/`ended` price one job at once; `tick`
   * without a jobId is the cost service's scheduled sweep (a BullMQ job scheduler, one per install).
   */
  cost: {
    payload: z
      .object({ jobId: objectId.optional(), event: z.enum(["started", "ended", "tick"]), at: z.string().datetime() })
      .strict()
      .refine((p) => p.event === "tick" || p.jobId !== undefined, { message: "started/ended events need a jobId" }),
    producers: ["api", "launcher", "monitor", "cost"],
    consumer: "cost",
    defaults: { attempts: 3, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Alert events to route to the team's channels (see ALERT_TYPES in alerts.ts). */
  alerts: {
    payload: z
      .object({
        type: alertTypeSchema,
        severity: severitySchema,
        jobId: objectId.optional(),
        clusterId: objectId.optional(),
        budgetId: objectId.optional(),
        /** Team of the event when no job, cluster or budget names it. */
        team: nameSchema.optional(),
        message: z.string().max(2000),
        at: z.string().datetime(),
        /** Events with the same key are sent once per channel repeat interval; default: type + subject id. */
        dedupKey: dedupKeySchema.optional(),
        /** Small facts for the message (threshold, spend, limit…): numbers and short strings only. */
        facts: z
          .record(z.string().regex(/^[a-z][A-Za-z0-9]{0,31}$/), z.union([z.number().finite(), z.string().max(200)]))
          .refine((f) => Object.keys(f).length <= 16, { message: "at most 16 facts" })
          .optional(),
      })
      .strict(),
    producers: ["launcher", "monitor", "api", "cost"],
    consumer: "alerting",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /**
   * One delivery attempt of one alert to one channel. The alerting service schedules attempt n+1
   * itself (exponential backoff, or the receiver's Retry-After), so every attempt is logged.
   */
  deliveries: {
    payload: z.object({ deliveryId: objectId, attempt: z.number().int().min(1).max(100) }).strict(),
    producers: ["alerting"],
    consumer: "alerting",
    defaults: { attempts: 3, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /** Copy one complete checkpoint from its node to the job's object store. */
  checkpoints: {
    payload: z.object({ jobId: objectId, checkpointId: objectId }).strict(),
    producers: ["monitor"],
    consumer: "monitor",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 2000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /**
   * One health/progress check of every running attempt of a cluster: one probe per node for all
   * the attempts on it. Re-scheduled by the monitor itself, one message per cluster and interval
   * slot (see scheduleClusterCheck in @trainyard/core), so replicas never multiply checks.
   */
  "cluster-checks": {
    payload: z.object({ clusterId: objectId }).strict(),
    producers: ["monitor"],
    consumer: "monitor",
    defaults: { attempts: 3, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: true, removeOnFail: 1000 },
  },
  /**
   * One scheduling pass over a cluster's queue (priority, then age): admits, in order, what fits.
   * Every capacity change (submit, job end, cancel, quota or cluster change) only asks for a pass;
   * requests are coalesced by a stable message id per cluster and time slot (see
   * requestSchedulingPass in @trainyard/core), so messages grow with changes, never with jobs².
   */
  schedule: {
    payload: z.object({ clusterId: objectId }).strict(),
    producers: ["api", "launcher", "monitor", "cost"],
    consumer: "launcher",
    defaults: { attempts: 5, backoff: { type: "exponential", delay: 500 }, removeOnComplete: true, removeOnFail: 100 },
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

/** Whether the catalog lets `service` send to `queue`. */
export function mayProduce(service: ServiceName, queue: QueueName): boolean {
  return (QUEUES[queue].producers as readonly ServiceName[]).includes(service);
}

/** The queues a service must consume, from the catalog. */
export function queuesConsumedBy(service: ServiceName): QueueName[] {
  return QUEUE_NAMES.filter((q) => QUEUES[q].consumer === service);
}

export function parsePayload<Q extends QueueName>(queue: Q, data: unknown): QueuePayload<Q> {
  return QUEUES[queue].payload.parse(data) as QueuePayload<Q>;
}
