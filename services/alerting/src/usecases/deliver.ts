import type { AlertDeliveryDoc } from "@trainyard/db";
import type { AlertData } from "../channels/message";
import type { AlertingDeps } from "../deps";
import { nextDelayMs } from "../retry";
import { queueAttempt } from "./route-alert";

/** An attempt still "sending" this long after it began was lost with its worker. */
const STALE_ATTEMPT_MS = 5 * 60_000;

/**
 * Attempt n of a delivery: claim it (a unique insert, so one worker sends it), send it over the
 * channel, log the outcome, and when it failed in a retryable way queue attempt n+1 after the
 * backoff (or the receiver's Retry-After). Permanent failures and exhausted attempts end it.
 */
export async function deliverAttempt(deps: AlertingDeps, deliveryId: string, n: number): Promise<void> {
  const { repos, logger } = deps;
  const delivery = await repos.alerts.deliveryById(deliveryId);
  if (!delivery || delivery.state !== "pending" || n <= delivery.attempts) return;
  const startedAt = new Date();
  if (!(await repos.alerts.claimAttempt(deliveryId, n, startedAt))) {
    await resumeClaimedAttempt(deps, delivery, n);
    return;
  }

  const channel = await repos.alerts.channelById(delivery.channelId);
  if (!channel?.enabled) {
    await repos.alerts.finishAttempt(deliveryId, n, {
      outcome: "failed",
      error: channel ? "channel is disabled" : "channel was deleted",
      durationMs: 0,
    });
    return;
  }
  const data = JSON.parse(delivery.data) as AlertData;
  const result = await deps.senders.send(channel, repos.alerts.openSecrets(channel), data, deliveryId);
  const durationMs = Date.now() - startedAt.getTime();
  deps.metrics.duration.observe({ channel_type: channel.type }, durationMs / 1000);
  const labels = { channel: channel.name, channel_type: channel.type };

  if (result.ok) {
    await repos.alerts.finishAttempt(deliveryId, n, {
      outcome: "delivered",
      durationMs,
      ...(result.status ? { status: result.status } : {}),
    });
    deps.metrics.sent.inc({ ...labels, outcome: "delivered" });
    logger.info({ deliveryId, channel: channel.name, type: delivery.type, attempt: n }, "alert delivered");
    return;
  }
  const status = result.status !== undefined ? { status: result.status } : {};
  if (result.retry && n < deps.maxAttempts) {
    const delay = nextDelayMs(n, { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs, retryAfterMs: result.retryAfterMs });
    const nextAttemptAt = new Date(Date.now() + delay);
    await repos.alerts.finishAttempt(deliveryId, n, {
      outcome: "retry",
      error: result.error,
      durationMs,
      nextAttemptAt,
      ...status,
    });
    deps.metrics.sent.inc({ ...labels, outcome: "retry" });
    logger.warn(
      { deliveryId, channel: channel.name, attempt: n, delayMs: delay, err: result.error },
      "alert delivery failed; will retry",
    );
    await queueAttempt(deps, deliveryId, n + 1, delay);
    return;
  }
  const why = result.retry ? `${result.error} (gave up after ${n} attempts)` : result.error;
  await repos.alerts.finishAttempt(deliveryId, n, { outcome: "failed", error: why, durationMs, ...status });
  deps.metrics.sent.inc({ ...labels, outcome: "failed" });
  logger.warn({ deliveryId, channel: channel.name, attempt: n, err: why }, "alert delivery failed permanently");
}

/**
 * Attempt n was claimed before: by a live worker (nothing to do), by one that died while sending
 * (log it as interrupted and retry), or by one that logged a retry but could not queue the next
 * attempt (queue it now).
 */
async function resumeClaimedAttempt(deps: AlertingDeps, delivery: AlertDeliveryDoc, n: number): Promise<void> {
  const id = delivery._id.toString();
  const a = await deps.repos.alerts.attemptOf(id, n);
  if (!a) return;
  if (a.outcome === "retry" && a.nextAttemptAt) {
    await queueAttempt(deps, id, n + 1, new Date(a.nextAttemptAt).getTime() - Date.now());
  } else if (a.outcome === "sending" && Date.now() - new Date(a.at).getTime() > STALE_ATTEMPT_MS) {
    const delay = nextDelayMs(n, { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs });
    await deps.repos.alerts.finishAttempt(id, n, {
      outcome: n < deps.maxAttempts ? "retry" : "failed",
      error: "attempt interrupted (worker lost)",
      durationMs: 0,
      ...(n < deps.maxAttempts ? { nextAttemptAt: new Date(Date.now() + delay) } : {}),
    });
    if (n < deps.maxAttempts) await queueAttempt(deps, id, n + 1, delay);
  }
}
