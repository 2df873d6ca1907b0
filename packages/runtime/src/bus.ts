import { mayProduce, QUEUE_NAMES, QUEUES, type QueueName, type QueuePayload, type ServiceName } from "@trainyard/common";
import { type JobsOptions, Queue } from "bullmq";
import type { Redis } from "ioredis";

export interface SendOptions {
  /** Deduplicates: a message with the same id already waiting is not added twice. No ':' allowed. */
  jobId?: string;
  delay?: number;
}

/**
 * Producer side of the queue catalog: validates every payload before it reaches Redis. A bus that
 * belongs to a service sends only to the queues the catalog lists that service as a producer of.
 */
export class QueueBus {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
    /** The service sending; without one (tools, tests) every queue is allowed. */
    readonly producer?: ServiceName,
  ) {}

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: QUEUES[name].defaults as JobsOptions,
      });
      this.queues.set(name, q);
    }
    return q;
  }

  allQueues(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queue(n));
  }

  async send<Q extends QueueName>(name: Q, payload: QueuePayload<Q>, opts: SendOptions = {}): Promise<void> {
    if (this.producer && !mayProduce(this.producer, name)) {
      throw new Error(`wiring error: the ${this.producer} service is not a producer of queue '${name}' in the queue catalog`);
    }
    const data = QUEUES[name].payload.parse(payload);
    await this.queue(name).add(name, data, {
      ...(opts.jobId ? { jobId: opts.jobId } : {}),
      ...(opts.delay ? { delay: opts.delay } : {}),
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
