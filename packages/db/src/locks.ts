import { randomBytes } from "node:crypto";
import { RELEASE_IF_HOLDER } from "@trainyard/common";
import type { Redis } from "ioredis";

/**
 * Per-document write locks.
 *
 * Why: on real MongoDB a conditional findOneAndUpdate is atomic, but FerretDB v1 (SQLite backend)
 * applies an update as read-modify-write without a transaction. Measured here: 8 concurrent
 * conditional claims of one job let 2-3 win, and concurrent updates of one document can lose each
 * other's fields. Every write to a job or cluster document therefore runs under a short Redis lock
 * on that document; the update itself stays conditional, so on MongoDB the lock is only a guard.
 */
export interface DocumentLocks {
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

export class RedisDocumentLocks implements DocumentLocks {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: { ttlMs: number; waitMs: number } = { ttlMs: 15_000, waitMs: 15_000 },
  ) {}

  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const lockKey = `${this.prefix}:doclock:${key}`;
    const token = randomBytes(12).toString("hex");
    const deadline = Date.now() + this.opts.waitMs;
    for (;;) {
      const ok = await this.redis.set(lockKey, token, "PX", this.opts.ttlMs, "NX");
      if (ok === "OK") break;
      if (Date.now() > deadline) throw new Error(`timed out after ${this.opts.waitMs} ms waiting for the write lock on ${key}`);
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
    try {
      return await fn();
    } finally {
      await this.redis.eval(RELEASE_IF_HOLDER, 1, lockKey, token);
    }
  }
}
