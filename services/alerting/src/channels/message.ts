import type { AlertType, Severity } from "@trainyard/common";

/** Everything a message shows, resolved when the event was routed (stored as the delivery's data). */
export interface AlertData {
  type: AlertType;
  severity: Severity;
  message: string;
  team: string;
  project?: string;
  job?: { id: string; name?: string; status?: string };
  budget?: { id: string; name?: string };
  cluster?: { id: string; name?: string };
  costUsd?: number;
  link?: string;
  facts?: Record<string, number | string>;
  at: string;
}

const TITLES: Record<AlertType, string> = {
  "budget.threshold": "Budget threshold reached",
  "budget.stop": "Job stopped by its budget",
  "budget.forecast": "Budget forecast over limit",
  "job.failed": "Job failed",
  "job.retrying": "Job retrying",
  "job.stalled": "Job stalled",
  "job.succeeded": "Job succeeded",
  "job.cancelled": "Job cancelled",
  "node.hostkey_mismatch": "SSH host key changed",
  "node.gpu_mismatch": "Node GPUs differ from the declaration",
  "node.unhealthy": "Node unhealthy: no new placement",
  "job.gpu_idle": "GPUs idle",
};
export const titleOf = (t: AlertType) => TITLES[t];

const money = (v: number) => `$${v.toFixed(v >= 100 ? 2 : 4)}`;

/** "Job: mlp (id) · Team: ml · Project: demo · Cost: $1.2345" as label/value pairs. */
export function summaryFields(d: AlertData): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (d.job) out.push(["Job", d.job.name ? `${d.job.name} (${d.job.id})` : d.job.id]);
  out.push(["Team", d.team]);
  if (d.project) out.push(["Project", d.project]);
  if (d.costUsd !== undefined) out.push(["Cost", money(d.costUsd)]);
  if (d.budget) out.push(["Budget", d.budget.name ?? d.budget.id]);
  if (d.cluster) out.push(["Cluster", d.cluster.name ?? d.cluster.id]);
  return out;
}

/** Standard Webhooks payload: {type, timestamp, data}. */
export function webhookBody(d: AlertData, deliveryId: string): string {
  const { type, at, ...data } = d;
  return JSON.stringify({ type, timestamp: at, data: { ...data, deliveryId } });
}

/** Slack mrkdwn needs &, < and > escaped. */
export const slackEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const ICON: Record<Severity, string> = { info: ":information_source:", warning: ":warning:", critical: ":rotating_light:" };

/** A Slack incoming-webhook message: a plain `text` fallback and a readable block layout. */
export function slackPayload(d: AlertData): { text: string; blocks: unknown[] } {
  const title = `${ICON[d.severity]} *${titleOf(d.type)}* (${d.severity})`;
  const fields = summaryFields(d).map(([k, v]) => `*${k}:* ${slackEscape(v)}`);
  const link = d.link ? `<${d.link}|Open in Trainyard>` : undefined;
  const text = `[${d.severity.toUpperCase()}] ${titleOf(d.type)}: ${d.message}`;
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `${title}\n${slackEscape(d.message)}` } },
      { type: "section", text: { type: "mrkdwn", text: fields.join("  ·  ") } },
      ...(link ? [{ type: "context", elements: [{ type: "mrkdwn", text: link }] }] : []),
    ],
  };
}

export function emailContent(d: AlertData): { subject: string; text: string } {
  const subject = `[Trainyard] [${d.severity.toUpperCase()}] ${titleOf(d.type)}: ${d.message}`
    .replace(/[\r\n]+/g, " ")
    .slice(0, 200);
  const lines = [
    `${titleOf(d.type)} (${d.severity})`,
    "",
    d.message,
    "",
    ...summaryFields(d).map(([k, v]) => `${k}: ${v}`),
    ...(d.facts ? Object.entries(d.facts).map(([k, v]) => `${k}: ${v}`) : []),
    ...(d.link ? ["", d.link] : []),
    "",
    `Event: ${d.type} at ${d.at}`,
  ];
  return { subject, text: lines.join("\n") };
}
