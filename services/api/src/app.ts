import { type Logger, parseAllowlist, SecretBox } from "@trainyard/common";
import { NodeGateway } from "@trainyard/core";
import { connectMongo, createRepos, RedisDocumentLocks, syncIndexes } from "@trainyard/db";
import { type RunningService, registerQueueDepthMetrics, startServiceBase } from "@trainyard/runtime";
import { SshPool } from "@trainyard/ssh";
import express from "express";
import helmet from "helmet";
import type { ApiConfig, ApiDeps } from "./context";
import { requireAdminToken } from "./http/auth";
import { errorHandler, notFoundHandler, requireJsonBody } from "./http/errors";
import { ADMIN_QUEUES_PATH, queueDashboard } from "./routes/admin";
import { alertChannelRoutes, alertLogRoutes } from "./routes/alerting";
import { checkpointRoutes } from "./routes/checkpoints";
import { clusterRoutes } from "./routes/clusters";
import { jobRoutes } from "./routes/jobs";
import { budgetRoutes, costRoutes, pricingRoutes } from "./routes/money";
import { storageRoutes } from "./routes/storage";

export type { ApiConfig } from "./context";
export { DEFAULT_TEAM } from "./context";

export interface StartApiOptions {
  /** Poll interval of followed logs (SSE); default 1000 ms. */
  logPollMs?: number;
}

/**
 * The API service: HTTP in, MongoDB and the queues out. /healthz, /readyz and /metrics come from
 * the runtime on the same listener; everything under /v1 and /admin/queues needs the admin token.
 * Holds no module-level state, so several can run in one process (tests).
 */
export async function startApi(
  config: ApiConfig,
  logger?: Logger,
  opts: StartApiOptions = {},
): Promise<RunningService & { url: string }> {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  app.use(helmet());

  // Authentication comes before anything reads the body: an anonymous caller gets 401, not 413.
  const auth = requireAdminToken(config.API_ADMIN_TOKEN);
  app.use("/v1", auth);
  app.use(ADMIN_QUEUES_PATH, auth);
  app.use(requireJsonBody);
  app.use(express.json({ limit: config.API_BODY_LIMIT_BYTES, strict: true, type: ["application/json", "application/*+json"] }));

  // Mounts /healthz, /readyz (Redis + MongoDB) and /metrics on `app`, ahead of the routes below.
  const base = await startServiceBase("api", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    port: config.PORT,
    host: config.HOST,
    app,
    ...(logger ? { logger } : {}),
  });
  let ssh: SshPool | undefined;
  try {
    const conn = base.mongo!;
    await syncIndexes(conn);
    // Writes to one job/cluster document are serialised through Redis (FerretDB v1 needs it; see @trainyard/db).
    const repos = createRepos(
      conn,
      new SecretBox(config.TRAINYARD_SECRET_KEY),
      new RedisDocumentLocks(base.redis, config.TRAINYARD_QUEUE_PREFIX),
    );
    ssh = new SshPool({
      connectTimeoutMs: config.SSH_CONNECT_TIMEOUT_MS,
      keepaliveIntervalMs: config.SSH_KEEPALIVE_MS,
      commandTimeoutMs: config.SSH_COMMAND_TIMEOUT_MS,
      logger: base.logger,
    });
    const pool = ssh;
    const gateway = new NodeGateway(pool, repos.credentials, {
      stopGraceMs: config.STOP_GRACE_MS,
      logTailBytes: config.LOG_TAIL_BYTES,
      commandTimeoutMs: config.SSH_COMMAND_TIMEOUT_MS,
    });
    // Queue depths of the whole catalog, read from Redis at scrape time.
    registerQueueDepthMetrics(base.registry, base.bus);
    const deps: ApiDeps = {
      repos,
      bus: base.bus,
      gateway,
      logger: base.logger,
      logPollMs: opts.logPollMs ?? 1000,
      streams: new Set(),
      alertAllowlist: parseAllowlist(config.ALERT_ALLOWED_HOSTS),
    };

    app.use("/v1/clusters", clusterRoutes(deps));
    app.use("/v1/pricing", pricingRoutes(deps));
    app.use("/v1/costs", costRoutes(deps));
    app.use("/v1/budgets", budgetRoutes(deps));
    app.use("/v1/alert-channels", alertChannelRoutes(deps));
    app.use("/v1/alerts", alertLogRoutes(deps));
    app.use("/v1/storage-credentials", storageRoutes(deps));
    app.use("/v1/jobs/:id/checkpoints", checkpointRoutes(deps));
    app.use("/v1/jobs", jobRoutes(deps));
    app.use(ADMIN_QUEUES_PATH, queueDashboard(base.bus));
    app.use(notFoundHandler);
    app.use(errorHandler(base.logger));

    // Closed in reverse order of registration: end live log streams first, then SSH.
    base.onClose(() => pool.close());
    base.onClose(async () => {
      for (const stop of [...deps.streams]) stop();
    });

    const port = await base.listen();
    const shownHost = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
    const url = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}`;
    base.logger.info({ url }, "api listening");
    return { port, url, close: () => base.close() };
  } catch (err) {
    await ssh?.close().catch(() => undefined);
    await base.close().catch(() => undefined);
    throw err;
  }
}
