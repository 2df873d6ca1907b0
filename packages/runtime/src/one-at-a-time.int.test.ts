import { randomBytes } from "node:crypto";
import { loadInfra } from "@trainyard/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OneAtATime } from "./one-at-a-time";

let redis: Redis;
const prefix = `ty-once-${randomBytes(4).toString("hex")}`;
beforeAll(() => {
  redis = new Redis(loadInfra().redisUrl);
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("OneAtATime (real Redis)", () => {
  it("never runs the work for one key twice at once, and runs it again for requests made meanwhile", async () => {
    // Two replicas: their own clients, as two processes would have.
    const a = new OneAtATime(redis, prefix);
    const other = new Redis(loadInfra().redisUrl);
    const b = new OneAtATime(other, prefix);
    let running = 0;
    let most = 0;
    let runs = 0;
    const work = async () => {
      running++;
      most = Math.max(most, running);
      runs++;
      await sleep(150);
      running--;
    };
    try {
      const first = a.run("c1", work);
      await sleep(30); // a runs
      // Five requests while a runs: b returns at once, a runs the work once more for all of them.
      const during = await Promise.all([1, 2, 3, 4, 5].map((i) => (i % 2 ? b : a).run("c1", work)));
      expect(during).toHaveLength(5);
      expect(runs).toBe(1);
      await first;
      expect(runs).toBe(2);
      expect(most).toBe(1);
      // Another key is not held back by c1.
      await Promise.all([a.run("c2", work), b.run("c3", work)]);
      expect(most).toBe(2);
      expect(await redis.keys(`${prefix}:once:*:lock`)).toEqual([]);
    } finally {
      other.disconnect();
    }
  });

  it("a failed run releases the key: the next request runs it", async () => {
    const a = new OneAtATime(redis, prefix);
    await expect(a.run("c4", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    let ran = false;
    await a.run("c4", async () => {
      ran = true;
    });
    expect(ran).toBe(true);
  });
});
