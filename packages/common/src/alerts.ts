import { z } from "zod";
import { nameSchema } from "./names";

/** Every alert event Trainyard raises. The names are part of the contract (routing rules use them). */
export const ALERT_TYPES = [
  "budget.threshold",
  "budget.stop",
  "budget.forecast",
  "job.failed",
  "job.retrying",
  "job.stalled",
  "job.gpu_idle",
  "job.succeeded",
  "job.cancelled",
  "node.hostkey_mismatch",
  "node.gpu_mismatch",
  "node.unhealthy",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export const alertTypeSchema = z.enum(ALERT_TYPES, { error: `must be one of ${ALERT_TYPES.join(", ")}` });

/** Sent only to channels that list them in `events` (opt-in). */
export const OPT_IN_ALERT_TYPES: ReadonlySet<AlertType> = new Set(["job.succeeded", "job.cancelled"]);
export const DEFAULT_CHANNEL_EVENTS: AlertType[] = ALERT_TYPES.filter((t) => !OPT_IN_ALERT_TYPES.has(t));

export const SEVERITIES = ["info", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];
export const severitySchema = z.enum(SEVERITIES, { error: `must be one of ${SEVERITIES.join(", ")}` });
export const severityRank = (s: Severity) => SEVERITIES.indexOf(s);

/** De-duplication keys: safe in Redis keys and logs. */
export const dedupKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9:._#-]{1,200}$/, "must be 1-200 characters of letters, digits, ':', '.', '_', '#', '-'");

export const CHANNEL_TYPES = ["webhook", "slack", "email"] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

const httpUrlSchema = z
  .string()
  .max(2048)
  .refine(
    (u) => {
      try {
        const p = new URL(u);
        return (p.protocol === "https:" || p.protocol === "http:") && !p.username && !p.password;
      } catch {
        return false;
      }
    },
    { message: "must be an http(s) URL without user info" },
  );

/** Standard Webhooks secret: "whsec_" + base64 of 24-64 random bytes. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
export const webhookSecretSchema = z
  .string()
  .regex(WEBHOOK_SECRET_PATTERN, "must be 'whsec_' followed by base64")
  .refine(
    (s) => {
      const n = Buffer.from(s.slice(6), "base64").length;
      return n >= 24 && n <= 64;
    },
    { message: "must hold 24 to 64 bytes" },
  );

const routing = {
  name: nameSchema,
  /** Event types this channel receives; default: all except the opt-in job.succeeded and job.cancelled. */
  events: z.array(alertTypeSchema).min(1).max(ALERT_TYPES.length).optional(),
  /** Lowest severity delivered. */
  minSeverity: severitySchema.default("info"),
  /** The same alert (same de-duplication key) is sent at most once per interval. */
  repeatIntervalSeconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .optional(),
  enabled: z.boolean().default(true),
};

export const alertChannelInputSchema = z.discriminatedUnion(
  "type",
  [
    z
      .object({
        type: z.literal("webhook"),
        url: httpUrlSchema,
        /** Standard Webhooks signing secret; generated (and shown once) when omitted. */
        secret: webhookSecretSchema.optional(),
        ...routing,
      })
      .strict(),
    z.object({ type: z.literal("slack"), url: httpUrlSchema, ...routing }).strict(),
    z
      .object({
        type: z.literal("email"),
        to: z
          .array(z.email({ message: "must be an e-mail address" }).max(254))
          .min(1)
          .max(20),
        ...routing,
      })
      .strict(),
  ],
  { error: `type must be one of ${CHANNEL_TYPES.join(", ")}` },
);
export type AlertChannelInput = z.input<typeof alertChannelInputSchema>;
export type AlertChannelSpec = z.infer<typeof alertChannelInputSchema>;

/** A channel as the API shows it: never the webhook secret or the Slack URL (which holds a token). */
export interface AlertChannelView {
  id: string;
  team: string;
  name: string;
  type: ChannelType;
  /** Webhook URL; for Slack only its origin. */
  url?: string;
  to?: string[];
  hasSecret?: boolean;
  events: AlertType[];
  minSeverity: Severity;
  repeatIntervalSeconds?: number;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** Whether a channel's routing takes an event. */
export function routes(
  channel: { events: readonly AlertType[]; minSeverity: Severity; enabled: boolean },
  type: AlertType,
  severity: Severity,
): boolean {
  return channel.enabled && channel.events.includes(type) && severityRank(severity) >= severityRank(channel.minSeverity);
}

export const DELIVERY_STATES = ["pending", "delivered", "failed", "suppressed"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];
export const ATTEMPT_OUTCOMES = ["sending", "delivered", "retry", "failed"] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export interface DeliveryAttemptView {
  n: number;
  at: string;
  outcome: AttemptOutcome;
  status?: number;
  error?: string;
  durationMs?: number;
  nextAttemptAt?: string;
}

export interface AlertDeliveryView {
  id: string;
  team: string;
  type: AlertType;
  severity: Severity;
  message: string;
  dedupKey: string;
  channel: { id: string; name: string; type: ChannelType };
  jobId?: string;
  budgetId?: string;
  clusterId?: string;
  state: DeliveryState;
  attempts: DeliveryAttemptView[];
  eventAt: string;
  createdAt: string;
  deliveredAt?: string;
}
