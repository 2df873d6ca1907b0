import type { Server } from "node:http";
import { ConfigError, createLogger, type Logger, loadConfig, type ServiceName } from "@trainyard/common";
import express, { type Express } from "express";
import type { Connection } from "mongoose";
import { collectDefaultMetrics, Registry } from "prom-client";
import { QueueBus } from "./bus";
import { closeServer, listen, mountHealthRoutes } from "./health";
import { createRedis, type Redis } from "./redis";

export interface BaseConfig {
  REDIS_URL: string;
  MONGO_URL: string;
  MONGO_DB: string;
  TRAINYARD_QUEUE_PREFIX: string;
  LOG_LEVEL: string;
  HEALTH_PORT: number;
  HEALTH_HOST: string;
  SHUTDOWN_TIMEOUT_MS: number;
}

/** What every service process holds: logger, metrics, Redis, the queue bus and (optionally) MongoDB. */
export interface ServiceBase {
  service: ServiceName;
  logger: Logger;
  registry: Registry;
  redis: Redis;
  bus: QueueBus;
  /** The health/metrics app; the API mounts its routes on its own app instead. */
  app: Express;
  shuttingDown: boolean;
}

export interface RunningService {
  port: number;
  close(): Promise<void>;
}

/**
 * Open the shared pieces, mount /healthz, /readyz, /metrics, listen, and return a close() that
 * stops work in the right order: stop taking work (onClose hooks), then connections, then HTTP.
 */
export async function startServiceBase(
  service: ServiceName,
  config: BaseConfig,
  opts: {
    mongo?: () => Promise<Connection>;
    logger?: Logger;
    app?: Express;
    port?: number;
    host?: string;
    /** Redis fails fast (see createRedis): for a service that answers requests, not one that consumes queues. */
    redisFailFastMs?: number;
  } = {},
): Promise<
  ServiceBase & { mongo?: Connection; listen(): Promise<number>; onClose(fn: () => Promise<void>): void; close(): Promise<void> }
> {
  const logger = opts.logger ?? createLogger(service, config.LOG_LEVEL);
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: "trainyard_process_" });
  const redis = createRedis(config.REDIS_URL, {
    name: `trainyard-${service}`,
    ...(opts.redisFailFastMs !== undefined ? { failFastTimeoutMs: opts.redisFailFastMs } : {}),
  });
  redis.on("error", (err) => logger.warn({ err: err.message }, "redis connection error"));
  const bus = new QueueBus(redis, config.TRAINYARD_QUEUE_PREFIX, service);
  const mongo = opts.mongo ? await opts.mongo() : undefined;
  const app = opts.app ?? express();
  const closers: Array<() => Promise<void>> = [];
  let server: Server | undefined;

  const base = {
    service,
    logger,
    registry,
    redis,
    bus,
    app,
    mongo,
    shuttingDown: false,
    onClose(fn: () => Promise<void>) {
      closers.push(fn);
    },
    async listen() {
      const res = await listen(app, opts.port ?? config.HEALTH_PORT, opts.host ?? config.HEALTH_HOST);
      server = res.server;
      return res.port;
    },
    async close() {
      base.shuttingDown = true;
      // Last registered first: workers stop taking work before the connections they use go away.
      for (const fn of closers.reverse()) {
        try {
          await fn();
        } catch (err) {
          logger.warn({ err: (err as Error).message }, "error during shutdown");
        }
      }
      await bus.close();
      await mongo?.close();
      redis.disconnect();
      if (server) await closeServer(server);
    },
  };
  mountHealthRoutes(
    app,
    {
      redis: async () => {
        await redis.ping();
      },
      ...(mongo
        ? {
            mongo: async () => {
              if (!mongo.db) throw new Error("not connected");
              await mongo.db.command({ ping: 1 });
            },
          }
        : {}),
    },
    registry,
    () => base.shuttingDown,
  );
  return base;
}

/**
 * Process entrypoint: validate configuration, start, and on SIGTERM/SIGINT close gracefully
 * (bounded by SHUTDOWN_TIMEOUT_MS) before exiting.
 */
export function runMain<C extends BaseConfig>(
  service: ServiceName,
  shape: Parameters<typeof loadConfig>[0],
  start: (config: C, logger: Logger) => Promise<RunningService>,
): void {
  const logger = createLogger(service);
  let config: C;
  try {
    config = loadConfig(shape) as unknown as C;
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.fatal(err.message);
      process.exit(2);
    }
    throw err;
  }
  start(config, logger).then(
    (running) => {
      logger.info({ port: running.port }, `${service} started`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, `${service} shutting down`);
        const timer = setTimeout(() => {
          logger.error("shutdown timed out; exiting");
          process.exit(1);
        }, config.SHUTDOWN_TIMEOUT_MS);
        timer.unref();
        running.close().then(
          () => process.exit(0),
          (err) => {
            logger.error({ err: (err as Error).message }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    },
    (err) => {
      logger.fatal({ err: (err as Error).message, stack: (err as Error).stack }, `${service} failed to start`);
      process.exit(1);
    },
  );
}
