/**
 * Test-only: one database and one Redis key prefix of its own per test file, on the local
 * infrastructure (or MONGO_URL / REDIS_URL of loadInfra), and a close() that leaves nothing behind.
 * Import from "@trainyard/db/testing"; never from service code.
 */
import { randomBytes } from "node:crypto";
import { SecretBox } from "@trainyard/common";
import { loadInfra } from "@trainyard/testkit";
import { Redis } from "ioredis";
import type { Connection } from "mongoose";
import { connectMongo, createRepos, RedisDocumentLocks, type Repos, syncIndexes } from "./index";

export interface TestStore {
  conn: Connection;
  redis: Redis;
  /** This store's Redis key prefix (locks, queues): deleted by close(). */
  prefix: string;
  locks: RedisDocumentLocks;
  box: SecretBox;
  repos: Repos;
  /** Drop the database, delete every Redis key under the prefix, disconnect. */
  close(): Promise<void>;
}

export async function openTestStore(label: string): Promise<TestStore> {
  const infra = loadInfra();
  const suffix = randomBytes(4).toString("hex");
  const conn = await connectMongo(infra.mongoUrl, `ty_${label}_${suffix}`);
  await syncIndexes(conn);
  const redis = new Redis(infra.redisUrl);
  const prefix = `ty-${label}-${suffix}`;
  const locks = new RedisDocumentLocks(redis, prefix);
  const box = new SecretBox(randomBytes(32).toString("base64"));
  return {
    conn,
    redis,
    prefix,
    locks,
    box,
    repos: createRepos(conn, box, locks),
    async close() {
      await conn.dropDatabase().catch(() => undefined);
      await conn.close();
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `${prefix}*`, count: 500 })) keys.push(...(batch as string[]));
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
