import { createHash } from "node:crypto";
import { type QueuePayload, routes } from "@trainyard/common";
import type { AlertChannelDoc } from "@trainyard/db";
import type { AlertData } from "../channels/message";
import type { AlertingDeps } from "../deps";

type AlertEvent = QueuePayload<"alerts">;

/** Events about the same subject share a key unless the producer gives one. */
export function defaultDedupKey(e: AlertEvent): string {
  return `${e.type}:${e.jobId ?? e.budgetId ?? e.clusterId ?? e.team ?? "global"}`;
}

/** Resolve what the message shows: team, project, job name, cost, a link. */
export async function resolveAlertData(deps: AlertingDeps, e: AlertEvent): Promise<AlertData> {
  const { repos } = deps;
  const [job, budget, cluster] = await Promise.all([
    e.jobId ? repos.jobs.byId(e.jobId) : null,
    e.budgetId ? repos.budgets.byId(e.budgetId) : null,
    e.clusterId ? repos.clusters.byId(e.clusterId) : null,
  ]);
  const team = job?.team ?? budget?.team ?? cluster?.team ?? e.team ?? "default";
  const project = job?.project ?? (budget?.scope.type === "project" ? budget.scope.project : undefined);
  const base = deps.publicUrl?.replace(/\/+$/, "");
  return {
    type: e.type,
    severity: e.severity,
    message: e.message,
    team,
    ...(project ? { project } : {}),
    ...(e.jobId ? { job: { id: e.jobId, ...(job ? { name: job.name, status: job.status } : {}) } } : {}),
    ...(e.budgetId ? { budget: { id: e.budgetId, ...(budget ? { name: budget.name } : {}) } } : {}),
    ...(e.clusterId ? { cluster: { id: e.clusterId, ...(cluster ? { name: cluster.name } : {}) } } : {}),
    ...(typeof job?.cost?.usd === "number" ? { costUsd: job.cost.usd } : {}),
    ...(base && e.jobId
      ? { link: `${base}/v1/jobs/${e.jobId}` }
      : base && e.budgetId
        ? { link: `${base}/v1/budgets/${e.budgetId}` }
        : {}),
    ...(e.facts ? { facts: e.facts } : {}),
    at: e.at,
  };
}

/**
 * Route one alert event to the team's channels whose rules take it: each gets a delivery record
 * (the log) and a first attempt on the `deliveries` queue. Within a channel's repeat interval an
 * event with the same de-duplication key is recorded as suppressed instead. Idempotent under
 * redelivery of the same event (`eventId` is the queue message id).
 */
export async function routeAlert(
  deps: AlertingDeps,
  e: AlertEvent,
  eventId: string,
): Promise<{ queued: number; suppressed: number }> {
  const { repos, logger } = deps;
  deps.metrics.received.inc({ type: e.type, severity: e.severity });
  const data = await resolveAlertData(deps, e);
  const channels = (await repos.alerts.listChannels(data.team)).filter((c) => routes(c, e.type, e.severity));
  const dedupKey = e.dedupKey ?? defaultDedupKey(e);
  let queued = 0;
  let suppressed = 0;
  for (const ch of channels) {
    const channelId = ch._id.toString();
    const key = createHash("sha256").update([eventId, e.at, e.type, dedupKey, channelId].join("\u0000")).digest("hex");
    const existing = await repos.alerts.deliveryByKey(key);
    if (existing) {
      // A redelivered event: make sure its pending delivery has its next attempt queued.
      if (existing.state === "pending") await queueAttempt(deps, existing._id.toString(), existing.attempts + 1, 0);
      continue;
    }
    const isDuplicate = await seenWithinInterval(deps, ch, dedupKey, key);
    const { doc, created } = await repos.alerts.createDelivery({
      key,
      team: data.team,
      type: e.type,
      severity: e.severity,
      message: e.message,
      dedupKey,
      data: JSON.stringify(data),
      ...(e.jobId ? { jobId: e.jobId } : {}),
      ...(e.budgetId ? { budgetId: e.budgetId } : {}),
      ...(e.clusterId ? { clusterId: e.clusterId } : {}),
      channelId,
      channelName: ch.name,
      channelType: ch.type,
      state: isDuplicate ? "suppressed" : "pending",
      attempts: 0,
      eventAt: new Date(e.at),
    });
    if (isDuplicate) {
      if (created) {
        suppressed++;
        deps.metrics.sent.inc({ channel: ch.name, channel_type: ch.type, outcome: "suppressed" });
        logger.info({ channel: ch.name, type: e.type, dedupKey }, "alert suppressed: already sent within the repeat interval");
      }
      continue;
    }
    if (doc.state === "pending") {
      await queueAttempt(deps, doc._id.toString(), doc.attempts + 1, 0);
      queued++;
    }
  }
  return { queued, suppressed };
}

/**
 * Whether the channel already got this key within its repeat interval. The first event of an
 * interval sets a Redis key (SET NX PX) holding its delivery key; a redelivery of that same event
 * finds its own key there and is not a duplicate.
 */
async function seenWithinInterval(
  deps: AlertingDeps,
  ch: AlertChannelDoc,
  dedupKey: string,
  deliveryKey: string,
): Promise<boolean> {
  const interval =
    ch.repeatIntervalSeconds !== undefined && ch.repeatIntervalSeconds !== null
      ? ch.repeatIntervalSeconds * 1000
      : deps.repeatIntervalMs;
  if (interval <= 0) return false;
  const rk = `${deps.prefix}:alertdedup:${ch._id.toString()}:${dedupKey}`;
  const set = await deps.redis.set(rk, deliveryKey, "PX", interval, "NX");
  if (set === "OK") return false;
  return (await deps.redis.get(rk)) !== deliveryKey;
}

export async function queueAttempt(deps: AlertingDeps, deliveryId: string, attempt: number, delayMs: number): Promise<void> {
  // Deterministic id: a repeated request for the same attempt adds nothing while it is queued.
  await deps.bus.send(
    "deliveries",
    { deliveryId, attempt },
    { jobId: `dlv-${deliveryId}-${attempt}`, delay: Math.max(0, Math.round(delayMs)) },
  );
}
