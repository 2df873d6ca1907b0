/**
 * Re-seal every stored secret with TRAINYARD_SECRET_KEY (run by scripts/rotate-secret-key.sh; see
 * docs/operations.md, "Rotating the secret key"). Prints the counts per collection as one JSON line
 * on stdout and each failure (collection, id, reason; never a secret) on stderr. Exit status: 0 when
 * nothing failed, 1 when something did, 2 for bad configuration.
 */
import { baseConfigShape, ConfigError, loadConfig, nodeAccessConfigShape, secretBoxFromConfig } from "@trainyard/common";
import { Redis } from "ioredis";
import { connectMongo } from "./connection";
import { RedisDocumentLocks } from "./locks";
import { rotateSecrets } from "./rotate-secrets";

const shape = {
  MONGO_URL: baseConfigShape.MONGO_URL,
  MONGO_DB: baseConfigShape.MONGO_DB,
  // Alert channels are written under the services' Redis document locks, so rotation takes them too.
  REDIS_URL: baseConfigShape.REDIS_URL,
  TRAINYARD_QUEUE_PREFIX: baseConfigShape.TRAINYARD_QUEUE_PREFIX,
  TRAINYARD_SECRET_KEY: nodeAccessConfigShape.TRAINYARD_SECRET_KEY,
  TRAINYARD_SECRET_KEY_PREVIOUS: nodeAccessConfigShape.TRAINYARD_SECRET_KEY_PREVIOUS,
};

async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig<typeof shape>>;
  try {
    config = loadConfig(shape);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const conn = await connectMongo(config.MONGO_URL, config.MONGO_DB);
  // Lazy: Redis is only reached when an alert channel needs re-sealing.
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 });
  try {
    const counts = await rotateSecrets(
      conn,
      secretBoxFromConfig(config),
      new RedisDocumentLocks(redis, config.TRAINYARD_QUEUE_PREFIX),
      {
        onFailure: (f) => process.stderr.write(`${JSON.stringify({ failed: f })}\n`),
      },
    );
    process.stdout.write(`${JSON.stringify(counts)}\n`);
    return Object.values(counts).some((c) => c.failed > 0) ? 1 : 0;
  } finally {
    redis.disconnect();
    await conn.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`rotate-secret-key: ${err.message}\n`);
    process.exit(1);
  },
);
