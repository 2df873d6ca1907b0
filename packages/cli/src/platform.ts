import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CliError, EXIT } from "./exit";
import { table } from "./format";
import { type Io, sleep } from "./io";
import {
  cmdlineOf,
  DEFAULT_REPLICAS,
  type PlatformSettings,
  parseEnvFile,
  paths,
  pidAlive,
  platformEnv,
  REPO_ROOT,
  type Replicas,
  readJson,
  SERVICES,
  type SupervisorState,
  writeAtomic,
} from "./platform-state";

export interface UpOptions {
  dir: string;
  replicas: Partial<Replicas>;
  port: number;
  host: string;
  infra: boolean;
  infraDir: string;
  db?: string;
  queuePrefix?: string;
  timeoutMs: number;
}

/** The supervisor of `dir` if it is running (its pid checked against its command line). */
export function supervisorPid(dir: string): number | undefined {
  const file = paths(dir).pid;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!pid || !pidAlive(pid)) return undefined;
  const cmd = cmdlineOf(pid);
  return cmd.includes("supervisor.ts") && cmd.includes(dir) ? pid : undefined;
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export interface PlatformStatus {
  running: boolean;
  dir: string;
  url?: string;
  supervisorPid?: number;
  services: Array<{
    service: string;
    replica: number;
    pid?: number;
    state: string;
    ready: boolean;
    restarts: number;
    log: string;
  }>;
}

export async function platformStatus(dir: string): Promise<PlatformStatus> {
  const pid = supervisorPid(dir);
  const st = pid ? readJson<SupervisorState>(paths(dir).state) : undefined;
  if (!pid || !st) return { running: false, dir, services: [] };
  const services = await Promise.all(
    st.services.map(async (r) => ({
      service: r.service,
      replica: r.replica,
      ...(r.pid ? { pid: r.pid } : {}),
      state: r.state,
      ready: r.state === "running" && pidAlive(r.pid) && (await ready(r.healthUrl)),
      restarts: r.restarts,
      log: r.log,
    })),
  );
  return { running: true, dir, url: st.url, supervisorPid: pid, services };
}

export function statusText(s: PlatformStatus): string {
  if (!s.running) return `the platform in ${s.dir} is not running ('trainyard platform up' starts it)`;
  return [
    `API ${s.url} — supervisor pid ${s.supervisorPid}, state in ${s.dir}`,
    table(
      ["SERVICE", "REPLICA", "PID", "STATE", "READY", "RESTARTS", "LOG"],
      s.services.map((r) => [r.service, r.replica, r.pid, r.state, r.ready ? "yes" : "no", r.restarts, r.log]),
    ),
  ].join("\n");
}

export async function platformUp(io: Io, o: UpOptions): Promise<{ url: string; token: string; status: PlatformStatus }> {
  const p = paths(o.dir);
  const replicas: Replicas = { ...DEFAULT_REPLICAS, ...o.replicas };
  for (const [svc, n] of Object.entries(replicas))
    if (!Number.isInteger(n) || n < 0 || n > 16)
      throw new CliError(`--${svc} must be a whole number 0..16 (got ${n})`, EXIT.USAGE);
  if (replicas.api < 1) throw new CliError("--api must be at least 1", EXIT.USAGE);
  const running = supervisorPid(o.dir);
  if (running) {
    const settings = readJson<PlatformSettings>(p.settings);
    const same = settings && settings.port === o.port && SERVICES.every((s) => settings.replicas[s] === replicas[s]);
    if (!same)
      throw new CliError(
        `the platform in ${o.dir} is already running with other settings (pid ${running}); 'trainyard platform down' first`,
        EXIT.REFUSED,
      );
    io.err(`[platform] already running (supervisor pid ${running})`);
    const env = parseEnvFile(readFileSync(p.env, "utf8"));
    const status = await platformStatus(o.dir);
    return { url: status.url ?? `http://127.0.0.1:${o.port}`, token: env.API_ADMIN_TOKEN ?? "", status };
  }

  // A supervisor that was killed may have left services behind: stop them before starting anew.
  if (existsSync(p.state)) await platformDown(io, o.dir);

  if (o.infra) {
    io.err("[platform] starting Redis, FerretDB and the sshd nodes (scripts/infra/up.sh)");
    try {
      execFileSync("bash", [join(REPO_ROOT, "scripts/infra/up.sh")], {
        stdio: ["ignore", process.stderr, process.stderr],
        env: { ...process.env, TRAINYARD_INFRA_DIR: o.infraDir },
      });
    } catch {
      throw new CliError("scripts/infra/up.sh failed (see above); it must run as root on Debian", EXIT.UNAVAILABLE);
    }
  }
  let redisUrl = process.env.REDIS_URL;
  let mongoUrl = process.env.MONGO_URL;
  if (!redisUrl || !mongoUrl) {
    const infra = readJson<{ redisUrl: string; mongoUrl: string }>(join(o.infraDir, "infra.json"));
    if (!infra)
      throw new CliError(
        `${join(o.infraDir, "infra.json")} is missing: run without --no-infra, or set REDIS_URL and MONGO_URL`,
        EXIT.UNAVAILABLE,
      );
    redisUrl ??= infra.redisUrl;
    mongoUrl ??= infra.mongoUrl;
  }
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const { env } = platformEnv(o.dir, {
    redisUrl,
    mongoUrl,
    ...(o.db ? { db: o.db } : {}),
    ...(o.queuePrefix ? { queuePrefix: o.queuePrefix } : {}),
  });
  const settings: PlatformSettings = { replicas, port: o.port, host: o.host };
  writeAtomic(p.settings, `${JSON.stringify(settings, null, 2)}\n`);
  rmSync(p.state, { force: true });

  const logFd = openSync(p.supervisorLog, "a");
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "packages/cli/src/supervisor.ts"), o.dir], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: process.env,
  });
  child.unref();
  const total = SERVICES.reduce((n, s) => n + replicas[s], 0);
  io.err(
    `[platform] starting ${SERVICES.map((s) => `${s} x${replicas[s]}`).join(", ")} (supervisor pid ${child.pid}, logs in ${p.logs})`,
  );

  const deadline = Date.now() + o.timeoutMs;
  let status: PlatformStatus = { running: false, dir: o.dir, services: [] };
  while (Date.now() < deadline) {
    await sleep(1000);
    if (!pidAlive(child.pid)) {
      throw new CliError(
        `the supervisor exited at once; see ${p.supervisorLog}:\n${tail(p.supervisorLog, 20)}`,
        EXIT.UNAVAILABLE,
      );
    }
    status = await platformStatus(o.dir);
    if (status.running && status.services.length === total && status.services.every((s) => s.ready)) {
      return { url: status.url!, token: env.API_ADMIN_TOKEN!, status };
    }
  }
  const bad = status.services.filter((s) => !s.ready);
  const detail = bad.map((s) => `--- ${s.log} (${s.state})\n${tail(s.log, 10)}`).join("\n");
  await platformDown(io, o.dir);
  throw new CliError(
    `the platform did not become ready in ${Math.round(o.timeoutMs / 1000)} s and was stopped; not ready: ${bad.map((s) => `${s.service}#${s.replica}`).join(", ") || "(none started)"}\n${detail}`,
    EXIT.UNAVAILABLE,
  );
}

export function tail(file: string, n: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Stops the supervisor (it stops every service gracefully); services still there after it (or
 * left by a supervisor that was killed) get SIGTERM, then SIGKILL after 20 s. Pids are checked
 * against their command lines before any signal.
 */
export async function platformDown(io: Io, dir: string): Promise<boolean> {
  const pid = supervisorPid(dir);
  const st = readJson<SupervisorState>(paths(dir).state);
  const ours = () =>
    (st?.services ?? []).filter(
      (r) => r.pid && pidAlive(r.pid) && cmdlineOf(r.pid).includes(`services/${r.service}/src/main.ts`),
    );
  if (!pid && !ours().length) {
    io.err(`[platform] not running in ${dir}`);
    return false;
  }
  if (pid) {
    io.err(`[platform] stopping (supervisor pid ${pid})`);
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 60_000;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(200);
    if (pidAlive(pid) && cmdlineOf(pid).includes("supervisor.ts")) {
      io.err("[platform] the supervisor did not stop in 60 s; killing it");
      process.kill(pid, "SIGKILL");
    }
  }
  let left = ours();
  if (left.length) {
    io.err(
      `[platform] stopping services left running: ${left.map((r) => `${r.service}#${r.replica} (pid ${r.pid})`).join(", ")}`,
    );
    for (const r of left) process.kill(r.pid!, "SIGTERM");
    const deadline = Date.now() + 20_000;
    for (;;) {
      left = ours();
      if (!left.length || Date.now() >= deadline) break;
      await sleep(200);
    }
    for (const r of left) process.kill(r.pid!, "SIGKILL");
  }
  rmSync(paths(dir).state, { force: true });
  rmSync(paths(dir).pid, { force: true });
  io.err("[platform] stopped");
  return true;
}
