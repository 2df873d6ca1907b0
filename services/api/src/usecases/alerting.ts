import { randomBytes } from "node:crypto";
import {
  ALERT_TYPES,
  type AlertChannelSpec,
  type AlertChannelView,
  type AlertDeliveryView,
  type alertChannelInputSchema,
  badRequest,
  checkOutboundUrl,
  DELIVERY_STATES,
  parseAllowlist,
} from "@trainyard/common";
import { alertChannelView, alertDeliveryView } from "@trainyard/db";
import { z } from "zod";
import type { ApiDeps } from "../context";

/** A new Standard Webhooks signing secret: "whsec_" + 32 random bytes, base64. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

/** Refuse URLs that reach private, loopback or link-local addresses (unless allowlisted). */
async function checkChannelUrl(deps: ApiDeps, spec: AlertChannelSpec): Promise<void> {
  if (spec.type === "email") return;
  const reason = await checkOutboundUrl(spec.url, deps.alertAllowlist ?? parseAllowlist(""));
  if (reason) throw badRequest(`url: ${reason}`);
}

/**
 * Create a channel. A webhook without a `secret` gets a generated one, returned in this response
 * only; secrets and Slack URLs are sealed at rest and never shown again.
 */
export async function createAlertChannel(
  deps: ApiDeps,
  team: string,
  spec: z.output<typeof alertChannelInputSchema>,
): Promise<AlertChannelView & { secret?: string }> {
  await checkChannelUrl(deps, spec);
  const generated = spec.type === "webhook" && spec.secret === undefined ? newWebhookSecret() : undefined;
  const doc = await deps.repos.alerts.createChannel(
    team,
    generated && spec.type === "webhook" ? { ...spec, secret: generated } : spec,
  );
  deps.logger.info({ channelId: doc._id.toString(), name: doc.name, type: doc.type }, "alert channel created");
  return { ...alertChannelView(doc), ...(generated ? { secret: generated } : {}) };
}

export async function listAlertChannels(deps: ApiDeps, team: string): Promise<AlertChannelView[]> {
  return (await deps.repos.alerts.listChannels(team)).map(alertChannelView);
}

export async function getAlertChannel(deps: ApiDeps, team: string, id: string): Promise<AlertChannelView> {
  return alertChannelView(await deps.repos.alerts.getChannel(team, id));
}

/** Replace a channel's settings; a webhook keeps its secret unless a new `secret` is given. */
export async function updateAlertChannel(
  deps: ApiDeps,
  team: string,
  id: string,
  spec: z.output<typeof alertChannelInputSchema>,
): Promise<AlertChannelView> {
  await checkChannelUrl(deps, spec);
  return alertChannelView(await deps.repos.alerts.replaceChannel(team, id, spec));
}

export async function deleteAlertChannel(deps: ApiDeps, team: string, id: string): Promise<void> {
  await deps.repos.alerts.deleteChannel(team, id);
}

export const alertsQuerySchema = z
  .object({
    channel: z
      .string()
      .regex(/^[0-9a-f]{24}$/, "must be a channel id")
      .optional(),
    state: z.enum(DELIVERY_STATES, { error: `must be one of ${DELIVERY_STATES.join(", ")}` }).optional(),
    type: z.enum(ALERT_TYPES, { error: `must be one of ${ALERT_TYPES.join(", ")}` }).optional(),
    jobId: z
      .string()
      .regex(/^[0-9a-f]{24}$/, "must be a job id")
      .optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  })
  .strict();

/** The delivery log: every alert routed to a channel, newest first, with each attempt and its outcome. */
export async function listAlertDeliveries(
  deps: ApiDeps,
  team: string,
  q: z.output<typeof alertsQuerySchema>,
): Promise<{ items: AlertDeliveryView[]; total: number; limit: number; offset: number }> {
  const { items, total } = await deps.repos.alerts.listDeliveries(team, {
    limit: q.limit,
    offset: q.offset,
    ...(q.channel ? { channelId: q.channel } : {}),
    ...(q.state ? { state: q.state } : {}),
    ...(q.type ? { type: q.type } : {}),
    ...(q.jobId ? { jobId: q.jobId } : {}),
  });
  return { items: items.map(alertDeliveryView), total, limit: q.limit, offset: q.offset };
}
