import type { RequestHandler } from "express";
import { type ClientRateLimitInfo, rateLimit, type Store } from "express-rate-limit";
import type { Redis } from "ioredis";
import { principalOf } from "./auth";

export interface RateLimitOptions {
  /** Requests per key per window. */
  limit: number;
  windowMs: number;
  /** Queue prefix: counters of different deployments sharing a Redis never mix. */
  prefix: string;
}

/** Count one hit and start the window on the first: [hits, ms left in the window]. */
const INCREMENT = `
local hits = redis.call("INCR", KEYS[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}`;

type CountingRedis = Redis & { trainyardRateIncrement(key: string, windowMs: number): Promise<[number, number]> };

/**
 * Fixed-window counters in Redis, one key per API key and window. Each call stands alone: a Redis
 * that was down or restarted (script cache gone) fails only the requests made meanwhile (503), never
 * the ones after it comes back (ioredis reloads the script by itself).
 */
class RedisWindowStore implements Store {
  private windowMs = 60_000;
  private readonly redis: CountingRedis;
  constructor(
    redis: Redis,
    readonly prefix: string,
  ) {
    if (!("trainyardRateIncrement" in redis)) redis.defineCommand("trainyardRateIncrement", { numberOfKeys: 1, lua: INCREMENT });
    this.redis = redis as CountingRedis;
  }
  init(options: { windowMs: number }): void {
    this.windowMs = options.windowMs;
  }
  async increment(key: string): Promise<ClientRateLimitInfo> {
    const [totalHits, ttl] = await this.redis.trainyardRateIncrement(this.prefix + key, this.windowMs);
    return { totalHits, resetTime: new Date(Date.now() + ttl) };
  }
  async decrement(key: string): Promise<void> {
    await this.redis.decr(this.prefix + key);
  }
  async resetKey(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}

/**
 * Requests per API key per window, counted in Redis so every API replica shares one budget.
 * Beyond it: 429 with `Retry-After` (seconds until the window resets) and a JSON message. With
 * Redis unavailable the request fails (503 + Retry-After, see errors.ts) rather than go uncounted.
 */
export function rateLimitPerKey(redis: Redis, opts: RateLimitOptions): RequestHandler {
  return rateLimit({
    windowMs: opts.windowMs,
    limit: opts.limit,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (_req, res) => principalOf(res).keyId,
    store: new RedisWindowStore(redis, `${opts.prefix}:ratelimit:`),
    handler: (_req, res, _next, options) => {
      res.status(options.statusCode).json({
        error: {
          message: `rate limit of ${opts.limit} requests per ${Math.round(opts.windowMs / 1000)} s exceeded for this key`,
        },
      });
    },
  });
}
