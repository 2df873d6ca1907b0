import { randomBytes } from "node:crypto";
import { RELEASE_IF_HOLDER, RENEW_IF_HOLDER } from "@trainyard/common";
import type { Redis } from "ioredis";

/**
 * Runs the work for a key on one replica at a time, and never loses a request: a request made
 * while another replica runs the work for that key only marks it wanted again, and the replica
 * running it runs it once more when it is done (however many requests came meanwhile).
 *
 * Why: a cluster's scheduling pass walks the whole queue; two passes of one cluster at once (two
 * launchers, messages of two coalescing slots) claim the same jobs and lock the same cluster
 * document, doubling the database's work for nothing. The work itself must stay safe to run twice
 * at once (a lock that expired, Redis lost): this only keeps it from being the usual case.
 */
export class OneAtATime {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** The lock's lifetime, renewed every third of it while the work runs: a crashed runner's lock lasts this long. */
    private readonly ttlMs = 30_000,
  ) {}

  /** Run `work` for `key` now, or have the replica already running it run it again. Resolves when this call's part is done. */
  async run(key: string, work: () => Promise<void>): Promise<void> {
    const wanted = `${this.prefix}:once:${key}:wanted`;
    const lock = `${this.prefix}:once:${key}:lock`;
    // Marked first: whoever holds the lock now sees it after its current run.
    await this.redis.set(wanted, "1", "PX", 10 * this.ttlMs);
    for (;;) {
      const token = randomBytes(12).toString("hex");
      if ((await this.redis.set(lock, token, "PX", this.ttlMs, "NX")) !== "OK") return;
      const renew = setInterval(() => {
        this.redis.eval(RENEW_IF_HOLDER, 1, lock, token, String(this.ttlMs)).catch(() => undefined);
      }, this.ttlMs / 3);
      try {
        while ((await this.redis.del(wanted)) === 1) await work();
      } finally {
        clearInterval(renew);
        await this.redis.eval(RELEASE_IF_HOLDER, 1, lock, token).catch(() => undefined);
      }
      // Wanted again after the last check but before the release: its requester saw the lock held.
      if (!(await this.redis.exists(wanted))) return;
    }
  }
}
