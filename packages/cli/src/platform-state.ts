import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository this CLI runs from: the services are started from its sources. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const SERVICES = ["api", "launcher", "monitor", "cost", "alerting"] as const;
export type ServiceName = (typeof SERVICES)[number];
export type Replicas = Record<ServiceName, number>;
export const DEFAULT_REPLICAS: Replicas = { api: 1, launcher: 1, monitor: 1, cost: 1, alerting: 1 };

export function defaultPlatformDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TRAINYARD_PLATFORM_DIR || "/var/tmp/trainyard-platform";
}

/** What `platform up` asked for; the supervisor reads it. */
export interface PlatformSettings {
  replicas: Replicas;
  port: number;
  host: string;
}

/** What the supervisor is running now (rewritten on every change). */
export interface ReplicaState {
  service: ServiceName;
  replica: number;
  pid?: number;
  /** Where /readyz answers: the API's own port, or the worker's health port. */
  healthUrl: string;
  log: string;
  state: "starting" | "running" | "restarting" | "stopped";
  restarts: number;
  startedAt?: string;
  lastExit?: { code: number | null; signal: string | null; at: string };
}
export interface SupervisorState {
  supervisorPid: number;
  startedAt: string;
  url: string;
  stopping: boolean;
  services: ReplicaState[];
}

export const paths = (dir: string) => ({
  env: join(dir, "platform.env"),
  settings: join(dir, "platform.json"),
  state: join(dir, "state.json"),
  pid: join(dir, "supervisor.pid"),
  supervisorLog: join(dir, "supervisor.log"),
  logs: join(dir, "logs"),
});

export function writeAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** `KEY=value` lines (no quoting: values are generated or URL-like). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export function formatEnvFile(env: Record<string, string>): string {
  for (const [k, v] of Object.entries(env))
    if (/[\n\r]/.test(v) || !/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`cannot store ${k} in an env file`);
  return `# Written by 'trainyard platform up'. Secrets: keep this file 0600.\n${Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")}\n`;
}

/**
 * The platform's environment, created once and kept: the secret key must outlive restarts (it
 * opens the SSH keys stored in the database) and so should the operator token.
 */
export function platformEnv(
  dir: string,
  given: { redisUrl: string; mongoUrl: string; db?: string; queuePrefix?: string },
): { env: Record<string, string>; created: boolean } {
  const p = paths(dir).env;
  const existing = existsSync(p) ? parseEnvFile(readFileSync(p, "utf8")) : {};
  const created = !existing.TRAINYARD_SECRET_KEY;
  const env: Record<string, string> = {
    TRAINYARD_SECRET_KEY: existing.TRAINYARD_SECRET_KEY ?? randomBytes(32).toString("base64"),
    API_ADMIN_TOKEN: existing.API_ADMIN_TOKEN ?? randomBytes(32).toString("base64url"),
    REDIS_URL: given.redisUrl,
    MONGO_URL: given.mongoUrl,
    MONGO_DB: given.db ?? existing.MONGO_DB ?? "trainyard",
    TRAINYARD_QUEUE_PREFIX: given.queuePrefix ?? existing.TRAINYARD_QUEUE_PREFIX ?? "trainyard",
  };
  writeAtomic(p, formatEnvFile(env), 0o600);
  return { env, created };
}

export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The command line of a pid (empty when it is gone): pids are checked before they are signalled. */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}
