import { Redis } from "ioredis";

/** A Redis connection fit for BullMQ workers (which need maxRetriesPerRequest: null). */
export function createRedis(url: string, name?: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...(name ? { connectionName: name } : {}) });
}
export type { Redis };
