import type { RequestHandler } from "express";
import { rateLimit } from "express-rate-limit";
import type { Redis } from "ioredis";
import { RedisStore } from "rate-limit-redis";
import { principalOf } from "./auth";

export interface RateLimitOptions {
  /** Requests per key per window. */
  limit: number;
  windowMs: number;
  /** Queue prefix: counters of different deployments sharing a Redis never mix. */
  prefix: string;
}

/**
 * Requests per API key per window, counted in Redis so every API replica shares one budget.
 * Beyond it: 429 with `Retry-After` (seconds until the window resets) and a JSON message.
 */
export function rateLimitPerKey(redis: Redis, opts: RateLimitOptions): RequestHandler {
  return rateLimit({
    windowMs: opts.windowMs,
    limit: opts.limit,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (_req, res) => principalOf(res).keyId,
    store: new RedisStore({
      prefix: `${opts.prefix}:ratelimit:`,
      sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as never,
    }),
    handler: (_req, res, _next, options) => {
      res.status(options.statusCode).json({
        error: {
          message: `rate limit of ${opts.limit} requests per ${Math.round(opts.windowMs / 1000)} s exceeded for this key`,
        },
      });
    },
  });
}
