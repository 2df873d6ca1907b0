import { type Logger, OPERATOR_ROLE, parseAllowlist, secretBoxFromConfig } from "@trainyard/common";
import { NodeGateway } from "@trainyard/core";
import { connectMongo, createRepos, RedisDocumentLocks, syncIndexes } from "@trainyard/db";
import { type RunningService, registerQueueDepthMetrics, startServiceBase } from "@trainyard/runtime";
import { SshPool } from "@trainyard/ssh";
import express from "express";
import helmet from "helmet";
import { ConfigCache } from "./config-cache";
import type { ApiConfig, ApiDeps } from "./context";
import { authenticate, requireRole } from "./http/auth";
import { CONSOLE_PATH, consoleApp } from "./http/console";
import { errorHandler, notFoundHandler, requireJsonBody } from "./http/errors";
import { openApiDocument } from "./http/openapi";
import { rateLimitPerKey } from "./http/rate-limit";
import { OPENAPI_PATH, REFERENCE_PATH, referencePage } from "./http/reference-page";
import { mountRoutes } from "./http/route-table";
import { apiRoutes } from "./routes";
import { ADMIN_QUEUES_PATH, queueDashboard } from "./routes/admin";

export type { ApiConfig } from "./context";
export { openApiDocument } from "./http/openapi";
export type { ApiRoute } from "./http/route-table";
export { apiRoutes } from "./routes";

/** Version shown in the OpenAPI document. */
export const API_VERSION = "0.2.0";

export interface StartApiOptions {
  /** Poll interval of followed logs (SSE); default 1000 ms. */
  logPollMs?: number;
}

/**
 * The API service: HTTP in, MongoDB and the queues out. /healthz, /readyz and /metrics come from
 * the runtime on the same listener, /openapi.json and /docs are public; everything under /v1 and
 * /admin/queues needs an API key (the queues an operator's). Holds no module-level state, so several
 * can run in one process (tests).
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

  // Mounts /healthz, /readyz (Redis + MongoDB) and /metrics on `app`, ahead of the routes below.
  const base = await startServiceBase("api", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    port: config.PORT,
    host: config.HOST,
    // A request that needs Redis while it is down is answered 503 at once, never left hanging.
    redisFailFastMs: config.API_REDIS_TIMEOUT_MS,
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
      secretBoxFromConfig(config),
      new RedisDocumentLocks(base.redis, config.TRAINYARD_QUEUE_PREFIX),
    );
    ssh = new SshPool({
      connectTimeoutMs: config.SSH_CONNECT_TIMEOUT_MS,
      keepaliveIntervalMs: config.SSH_KEEPALIVE_MS,
      commandTimeoutMs: config.SSH_COMMAND_TIMEOUT_MS,
      logger: base.logger,
    });
    const pool = ssh;
    await repos.teams.ensure(config.API_ADMIN_TEAM);
    // Jobs stored by an older version are filed in list pages in the background (lists miss them until then).
    void repos.jobs.fileUnlistedJobs().then(
      (filed) => filed && base.logger.info({ filed }, "jobs stored before list pages filed"),
      (err: Error) =>
        base.logger.warn({ err: err.message }, "could not file older jobs in list pages; retried at the next start"),
    );
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
      platformTeam: config.API_ADMIN_TEAM,
      streams: new Set(),
      config: new ConfigCache(config.API_CONFIG_CACHE_MS),
      alertAllowlist: parseAllowlist(config.ALERT_ALLOWED_HOSTS),
    };

    const routes = apiRoutes(deps);
    const contract = openApiDocument(routes, API_VERSION);
    app.get(OPENAPI_PATH, (_req, res) => {
      res.json(contract);
    });
    app.use(REFERENCE_PATH, referencePage());
    // The web console (static files; its data comes from /v1 with the user's key).
    app.use(CONSOLE_PATH, consoleApp());

    // Authentication, then the per-key rate limit, come before anything reads the body: an
    // anonymous caller gets 401, not 413.
    const auth = authenticate(repos, { bootstrapToken: config.API_ADMIN_TOKEN, bootstrapTeam: config.API_ADMIN_TEAM });
    const limit = rateLimitPerKey(base.redis, {
      limit: config.API_RATE_LIMIT,
      windowMs: config.API_RATE_LIMIT_WINDOW_MS,
      prefix: config.TRAINYARD_QUEUE_PREFIX,
    });
    app.use("/v1", auth, limit);
    // The queue dashboard shows every team's job payloads: operators only.
    app.use(ADMIN_QUEUES_PATH, auth, limit, requireRole(OPERATOR_ROLE));
    app.use(requireJsonBody);
    app.use(express.json({ limit: config.API_BODY_LIMIT_BYTES, strict: true, type: ["application/json", "application/*+json"] }));

    const router = express.Router();
    mountRoutes(router, routes, deps);
    app.use(router);
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
