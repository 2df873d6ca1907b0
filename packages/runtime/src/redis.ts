import { Redis } from "ioredis";

export interface RedisOptions {
  /** Connection name shown by CLIENT LIST. */
  name?: string;
  /**
   * Fail fast instead of waiting for Redis (the API's producing connection): with Redis down a
   * command is refused at once (no offline queue) and one that gets no answer fails after this many
   * ms, so a request is answered 503 instead of hanging. Without it (workers), commands wait and
   * retry until Redis is back, as BullMQ workers need (maxRetriesPerRequest: null).
   */
  failFastTimeoutMs?: number;
}

/** A Redis connection: a worker's patient one by default, or a producer's fail-fast one. */
export function createRedis(url: string, o: RedisOptions = {}): Redis {
  const named = o.name ? { connectionName: o.name } : {};
  if (o.failFastTimeoutMs !== undefined) {
    return new Redis(url, {
      ...named,
      enableReadyCheck: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.failFastTimeoutMs,
    });
  }
  return new Redis(url, { ...named, maxRetriesPerRequest: null, enableReadyCheck: true });
}

/**
 * Redis could not take the command right now (down, restarting, not answering): the request may
 * simply be repeated later. Recognised by ioredis's own messages, as its errors have no codes.
 */
export function isRedisUnavailableError(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  if (e.name === "MaxRetriesPerRequestError") return true;
  if (typeof e.code === "string" && ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(e.code)) return true;
  const msg = typeof e.message === "string" ? e.message : "";
  return /enableOfflineQueue options is false|Connection is closed|Command timed out|LOADING Redis is loading|Reached the max retries per request/i.test(
    msg,
  );
}
export type { Redis };
