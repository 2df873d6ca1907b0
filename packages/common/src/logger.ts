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
  "TRAINYARD_SECRET_KEY_PREVIOUS",
  "API_ADMIN_TOKEN",
  "secret",
  "*.secret",
  "ALERT_SMTP_URL",
];

/** A pino logger with the service's name and secret redaction; `destination` defaults to stdout. */
export function createLogger(
  service: string,
  level = process.env.LOG_LEVEL ?? "info",
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    name: service,
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
