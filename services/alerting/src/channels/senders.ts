import type { HostAllowlist } from "@trainyard/common";
import type { AlertChannelDoc, ChannelSecrets } from "@trainyard/db";
import nodemailer from "nodemailer";
import type { SendResult } from "../retry";
import { postGuarded } from "./http";
import { type AlertData, emailContent, slackPayload, webhookBody } from "./message";
import { webhookHeaders } from "./webhook";

/** Sends one attempt of one delivery over its channel; never throws. */
export interface Senders {
  send(channel: AlertChannelDoc, secrets: ChannelSecrets, data: AlertData, deliveryId: string): Promise<SendResult>;
  close(): void;
}

export function createSenders(opts: {
  allow: HostAllowlist;
  timeoutMs: number;
  smtpUrl?: string | undefined;
  emailFrom: string;
}): Senders {
  const mailer = opts.smtpUrl
    ? nodemailer.createTransport(opts.smtpUrl, {
        connectionTimeout: opts.timeoutMs,
        greetingTimeout: opts.timeoutMs,
        socketTimeout: opts.timeoutMs,
      } as never)
    : undefined;
  return {
    async send(channel, secrets, data, deliveryId) {
      switch (channel.type) {
        case "webhook": {
          if (!secrets.url) return { ok: false, retry: false, error: "channel has no URL" };
          const body = webhookBody(data, deliveryId);
          // One webhook-id per message, the same on every retry (receivers de-duplicate on it).
          const headers = webhookHeaders(secrets.secret, `msg_${deliveryId}`, Math.floor(Date.now() / 1000), body);
          return postGuarded(secrets.url, body, headers, { allow: opts.allow, timeoutMs: opts.timeoutMs });
        }
        case "slack": {
          if (!secrets.url) return { ok: false, retry: false, error: "channel has no URL" };
          return postGuarded(
            secrets.url,
            JSON.stringify(slackPayload(data)),
            {},
            { allow: opts.allow, timeoutMs: opts.timeoutMs },
          );
        }
        case "email": {
          if (!mailer) return { ok: false, retry: false, error: "no SMTP server configured (ALERT_SMTP_URL)" };
          const { subject, text } = emailContent(data);
          try {
            await mailer.sendMail({
              from: opts.emailFrom,
              to: channel.to ?? [],
              subject,
              text,
              headers: { "X-Trainyard-Delivery": deliveryId },
            });
            return { ok: true };
          } catch (err) {
            const e = err as Error & { responseCode?: number; code?: string };
            // SMTP 4xx is transient, 5xx permanent; no reply code means the connection failed: retry.
            const permanent = typeof e.responseCode === "number" && e.responseCode >= 500;
            return {
              ok: false,
              retry: !permanent,
              ...(e.responseCode ? { status: e.responseCode } : {}),
              error: `SMTP ${e.responseCode ?? e.code ?? "error"}: ${e.message}`.slice(0, 500),
            };
          }
        }
      }
    },
    close() {
      mailer?.close();
    },
  };
}
