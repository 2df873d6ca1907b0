import { z } from "zod";
import { parseAllowlist } from "./net-guard";

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/** Comma-separated host names, IPs or CIDRs (validated by parseAllowlist). */
const allowlistSchema = z
  .string()
  .default("")
  .refine(
    (v) => {
      try {
        parseAllowlist(v);
        return true;
      } catch {
        return false;
      }
    },
    { message: "must be comma-separated host names, IP addresses or CIDRs (e.g. hooks.internal,10.1.0.0/16)" },
  );

/** Variables every service reads. Each is documented in docs/configuration.md. */
export const baseConfigShape = {
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  MONGO_URL: z.string().startsWith("mongodb").default("mongodb://127.0.0.1:27017/"),
  MONGO_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,63}$/)
    .default("trainyard"),
  TRAINYARD_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .default("trainyard"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Port of the service's /healthz, /readyz and /metrics listener; 0 picks a free one. */
  HEALTH_PORT: int(0),
  HEALTH_HOST: z.string().default("0.0.0.0"),
  SHUTDOWN_TIMEOUT_MS: int(30_000),
};

/** Variables of services that talk to nodes or hold secrets. */
export const nodeAccessConfigShape = {
  TRAINYARD_SECRET_KEY: z
    .string()
    .refine((v) => Buffer.from(v, "base64").length === 32, "must be 32 random bytes, base64-encoded (openssl rand -base64 32)"),
  /** Comma-separated earlier keys that still open secrets while they are re-sealed (docs/operations.md). */
  TRAINYARD_SECRET_KEY_PREVIOUS: z
    .string()
    .optional()
    .refine(
      (v) =>
        (v ?? "")
          .split(",")
          .map((k) => k.trim())
          .every((k) => k === "" || Buffer.from(k, "base64").length === 32),
      "must be comma-separated keys of 32 random bytes, base64-encoded",
    ),
  SSH_CONNECT_TIMEOUT_MS: int(10_000, 100),
  SSH_KEEPALIVE_MS: int(15_000, 0),
  SSH_COMMAND_TIMEOUT_MS: int(60_000, 100),
  STOP_GRACE_MS: int(10_000, 0),
  LOG_TAIL_BYTES: int(8192, 0),
};

/** Worker services rebuild lost queue messages from the database once at start and this often. */
const reconcileConfigShape = {
  RECONCILE_INTERVAL_MS: int(30_000, 100),
};

export const launcherConfigShape = {
  ...baseConfigShape,
  ...nodeAccessConfigShape,
  ...reconcileConfigShape,
  LAUNCHER_CONCURRENCY: int(4, 1),
  /** A launching attempt whose launcher has not renewed its lease for this long is taken over by another replica. */
  LAUNCH_LEASE_MS: int(30_000, 300),
};

export const monitorConfigShape = {
  ...baseConfigShape,
  ...nodeAccessConfigShape,
  ...reconcileConfigShape,
  MONITOR_CONCURRENCY: int(8, 1),
  MONITOR_INTERVAL_MS: int(5_000, 100),
  /**
   * A check that changes nothing deciding an attempt's fate (node states, exit codes, missed checks)
   * writes its freshness (last seen, log tail, progress) once per this many intervals, not every one.
   */
  MONITOR_STATUS_WRITE_INTERVALS: int(3, 1),
  /** Consecutive failed checks before a node counts as lost. */
  NODE_LOST_AFTER_MISSES: int(3, 1),
  /** GPU/process samples kept per job (the oldest are pruned, once a minute). */
  TELEMETRY_MAX_SAMPLES_PER_JOB: int(20_000, 10),
  /** Alert `job.gpu_idle` once per attempt when every GPU of it stayed below this utilisation… */
  GPU_IDLE_UTIL_PCT: int(5, 0),
  /** …for this long (0: never). */
  GPU_IDLE_SECONDS: int(1800, 0),
};

export const apiConfigShape = {
  ...baseConfigShape,
  ...nodeAccessConfigShape,
  PORT: int(8080),
  HOST: z.string().default("0.0.0.0"),
  /** The bootstrap key: a platform operator of API_ADMIN_TEAM; use it to create teams and issue keys. */
  API_ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters"),
  /** The platform team: the bootstrap key's, the only one that may hold operator keys (created at start if missing). */
  API_ADMIN_TEAM: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "must be a team name")
    .default("default"),
  API_BODY_LIMIT_BYTES: int(2 * 1024 * 1024, 1024),
  /** Requests each API key may make per API_RATE_LIMIT_WINDOW_MS (shared by all API replicas). */
  API_RATE_LIMIT: int(1200, 1),
  API_RATE_LIMIT_WINDOW_MS: int(60_000, 1000),
  /** A Redis command of the API (queue add, rate limit, write lock) that gets no answer fails after this; Redis down fails at once (503). */
  API_REDIS_TIMEOUT_MS: int(5_000, 50),
  /**
   * How long one API replica reuses what every submit reads and rarely changes (a team's default
   * priority, a cluster's nodes, the budgets covering a scope): writes through the same replica are
   * seen at once, through another replica after at most this long. 0 reads them on every submit.
   */
  API_CONFIG_CACHE_MS: int(1_000),
  /** Base URL used in links (e.g. alerts); defaults to http://HOST:PORT. */
  PUBLIC_URL: z.string().url().optional(),
  /** Private/loopback hosts or CIDRs alert channels may point at (checked when a channel is saved). */
  ALERT_ALLOWED_HOSTS: allowlistSchema,
};

/** Variables of the cost service. */
export const costConfigShape = {
  ...baseConfigShape,
  ...reconcileConfigShape,
  /** How often every running job is re-priced and every budget evaluated. */
  COST_INTERVAL_MS: int(60_000, 100),
  COST_CONCURRENCY: int(4, 1),
  /** How old the stored-data snapshot behind the money/job/budget gauges may get before a scrape re-reads it. */
  COST_METRICS_MAX_AGE_MS: int(15_000, 0),
};

/** Variables of the alerting service. */
export const alertingConfigShape = {
  ...baseConfigShape,
  /** Opens the sealed webhook secrets and Slack URLs of alert channels (same key as the API). */
  TRAINYARD_SECRET_KEY: nodeAccessConfigShape.TRAINYARD_SECRET_KEY,
  TRAINYARD_SECRET_KEY_PREVIOUS: nodeAccessConfigShape.TRAINYARD_SECRET_KEY_PREVIOUS,
  ALERTING_CONCURRENCY: int(8, 1),
  ALERT_ALLOWED_HOSTS: allowlistSchema,
  /** Default repeat interval of a channel: the same alert is sent at most once per interval. */
  ALERT_REPEAT_INTERVAL_MS: int(4 * 3_600_000, 0),
  /** Attempts per delivery before it is given up (429 waits count as attempts). */
  ALERT_MAX_ATTEMPTS: int(8, 1),
  /** First retry delay; doubles per attempt up to ALERT_RETRY_MAX_MS. */
  ALERT_RETRY_BASE_MS: int(5_000, 10),
  ALERT_RETRY_MAX_MS: int(3_600_000, 10),
  /** Timeout of one webhook/Slack request or SMTP send. */
  ALERT_HTTP_TIMEOUT_MS: int(10_000, 100),
  /** SMTP server for e-mail channels, e.g. smtp://user:pass@mail:587 or smtps://… (unset: e-mail channels fail). */
  ALERT_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, "must start with smtp:// or smtps://")
    .optional(),
  ALERT_EMAIL_FROM: z.string().max(254).default("Trainyard <trainyard@localhost>"),
  /** Base URL for links in alerts (the API's public address). */
  PUBLIC_URL: z.string().url().optional(),
};

export const workerConfigShape = { ...baseConfigShape };

export class ConfigError extends Error {}

/** Parse process.env (or a given object) against a shape; the message lists every bad variable. */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<z.ZodObject<S>> {
  const result = z.object(shape).safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return result.data;
}

type ConfigOf<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>>;
export type LauncherConfig = ConfigOf<typeof launcherConfigShape>;
export type MonitorConfig = ConfigOf<typeof monitorConfigShape>;
export type ApiConfig = ConfigOf<typeof apiConfigShape>;
export type WorkerConfig = ConfigOf<typeof workerConfigShape>;
export type CostConfig = ConfigOf<typeof costConfigShape>;
export type AlertingConfig = ConfigOf<typeof alertingConfigShape>;
