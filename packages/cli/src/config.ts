import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { CliError, EXIT } from "./exit";

/** One API endpoint and the key used with it. */
export const contextSchema = z.object({ url: z.string().url(), token: z.string().min(1) }).strict();
export type Context = z.infer<typeof contextSchema>;

export const configSchema = z
  .object({
    current: z.string().optional(),
    contexts: z.record(z.string(), contextSchema).default({}),
  })
  .strict();
export type CliConfig = z.infer<typeof configSchema>;

export const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const DEFAULT_CONTEXT = "default";

/** $TRAINYARD_CONFIG, else $XDG_CONFIG_HOME/trainyard/config.json, else ~/.config/trainyard/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TRAINYARD_CONFIG) return env.TRAINYARD_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "trainyard", "config.json");
}

export function readConfig(path: string): CliConfig {
  if (!existsSync(path)) return { contexts: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CliError(`${path} is not valid JSON (${(err as Error).message}); fix or remove it`, EXIT.USAGE);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    throw new CliError(
      `${path} is not a trainyard config: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
      EXIT.USAGE,
    );
  return parsed.data;
}

/** Written whole to a 0600 temporary file, then renamed: the token is never world-readable, even briefly. */
export function writeConfig(path: string, config: CliConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function setContext(config: CliConfig, name: string, ctx: Context, makeCurrent = true): CliConfig {
  if (!CONTEXT_NAME.test(name))
    throw new CliError(`context name '${name}' must be 1-63 letters, digits, '.', '_' or '-'`, EXIT.USAGE);
  const contexts = { ...config.contexts, [name]: contextSchema.parse(ctx) };
  return { ...config, contexts, current: makeCurrent ? name : (config.current ?? name) };
}

export function removeContext(config: CliConfig, name: string): CliConfig {
  if (!config.contexts[name]) throw new CliError(`no context named '${name}'`, EXIT.USAGE);
  const { [name]: _, ...contexts } = config.contexts;
  const current = config.current === name ? undefined : config.current;
  return { contexts, ...(current ? { current } : {}) };
}

export interface Resolved {
  url: string;
  token: string;
  /** The context the values came from (absent when only the environment gave them). */
  context?: string;
  source: { url: "env" | "context"; token: "env" | "context" };
}

/**
 * Where requests go and with which key: --context, else $TRAINYARD_CONTEXT, else the current
 * context; $TRAINYARD_URL and $TRAINYARD_TOKEN override the context's values.
 */
export function resolveContext(config: CliConfig, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Resolved {
  const name = flag ?? (env.TRAINYARD_CONTEXT || undefined) ?? config.current;
  const ctx = name ? config.contexts[name] : undefined;
  if (name && !ctx && (flag !== undefined || env.TRAINYARD_CONTEXT))
    throw new CliError(
      `no context named '${name}' (known: ${Object.keys(config.contexts).join(", ") || "none"}); run 'trainyard login --context ${name} --url … --token …'`,
      EXIT.USAGE,
    );
  const url = env.TRAINYARD_URL || ctx?.url;
  const token = env.TRAINYARD_TOKEN || ctx?.token;
  if (!url || !token)
    throw new CliError(
      "not logged in: run 'trainyard login --url <api url> --token <key>' (or set TRAINYARD_URL and TRAINYARD_TOKEN)",
      EXIT.AUTH,
    );
  return {
    url: url.replace(/\/+$/, ""),
    token,
    ...(ctx && name ? { context: name } : {}),
    source: { url: env.TRAINYARD_URL ? "env" : "context", token: env.TRAINYARD_TOKEN ? "env" : "context" },
  };
}
