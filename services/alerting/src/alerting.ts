import { type AlertingConfig, type Logger, parseAllowlist, secretBoxFromConfig } from "@trainyard/common";
import { connectMongo, createRepos, RedisDocumentLocks, syncIndexes } from "@trainyard/db";
import { type RunningService, startServiceBase, startWorkers } from "@trainyard/runtime";
import { createSenders } from "./channels/senders";
import type { AlertingDeps } from "./deps";
import { registerAlertingMetrics } from "./metrics";
import { deliverAttempt } from "./usecases/deliver";
import { routeAlert } from "./usecases/route-alert";

export { signWebhook, verifyWebhook } from "./channels/webhook";

/**
 * The alerting service: routes alert events to each team's channels (`alerts`), then delivers
 * every attempt through the `deliveries` queue with backoff, logging each one. Any number of
 * replicas may run: routing is idempotent per event and channel, and each attempt is claimed by a
 * unique insert before it is sent.
 */
export async function startAlerting(config: AlertingConfig, logger?: Logger): Promise<RunningService> {
  const base = await startServiceBase("alerting", config, {
    mongo: () => connectMongo(config.MONGO_URL, config.MONGO_DB),
    ...(logger ? { logger } : {}),
  });
  try {
    await syncIndexes(base.mongo!);
    const repos = createRepos(
      base.mongo!,
      secretBoxFromConfig(config),
      new RedisDocumentLocks(base.redis, config.TRAINYARD_QUEUE_PREFIX),
    );
    const allow = parseAllowlist(config.ALERT_ALLOWED_HOSTS);
    const senders = createSenders({
      allow,
      timeoutMs: config.ALERT_HTTP_TIMEOUT_MS,
      smtpUrl: config.ALERT_SMTP_URL,
      emailFrom: config.ALERT_EMAIL_FROM,
    });
    const deps: AlertingDeps = {
      repos,
      bus: base.bus,
      redis: base.redis,
      prefix: config.TRAINYARD_QUEUE_PREFIX,
      logger: base.logger,
      metrics: registerAlertingMetrics(base.registry),
      senders,
      allow,
      ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
      repeatIntervalMs: config.ALERT_REPEAT_INTERVAL_MS,
      maxAttempts: config.ALERT_MAX_ATTEMPTS,
      retryBaseMs: config.ALERT_RETRY_BASE_MS,
      retryMaxMs: config.ALERT_RETRY_MAX_MS,
    };
    const workers = startWorkers({
      service: "alerting",
      connection: base.redis,
      prefix: config.TRAINYARD_QUEUE_PREFIX,
      logger: base.logger,
      registry: base.registry,
      concurrency: { alerts: config.ALERTING_CONCURRENCY, deliveries: config.ALERTING_CONCURRENCY },
      handlers: {
        alerts: async (p, job) => {
          await routeAlert(deps, p, String(job.id));
        },
        deliveries: (p) => deliverAttempt(deps, p.deliveryId, p.attempt),
      },
    });
    base.onClose(async () => senders.close());
    base.onClose(() => workers.close());
    const port = await base.listen();
    return { port, close: () => base.close() };
  } catch (err) {
    await base.close().catch(() => undefined);
    throw err;
  }
}
