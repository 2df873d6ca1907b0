import { type Logger, pino } from "pino";

/** Paths that may hold secrets anywhere in a log object; pino replaces them. */
export const REDACT_PATHS = [
  "privateKey",
  "passphrase",
  "password",
  "token",
  "authorization",
  "*.privateKey",
  "*.passphrase",
  "*.password",
  "*.token",
  "*.authorization",
  "ssh.privateKey",
  "*.ssh.privateKey",
  "req.headers.authorization",
  "headers.authorization",
  "TRAINYARD_SECRET_KEY",
  "API_ADMIN_TOKEN",
  "secret",
  "*.secret",
  "ALERT_SMTP_URL",
];

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
