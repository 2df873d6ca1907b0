/**
 * The platform supervisor (started detached by `trainyard platform up`): runs every replica of
 * the five services from this repository, each logging to its own file, restarts one that exits
 * (backoff 1 s doubling to 30 s), and on SIGTERM stops them all gracefully.
 * Usage: node --import tsx supervisor.ts <platform dir>
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import {
  type PlatformSettings,
  parseEnvFile,
  paths,
  REPO_ROOT,
  type ReplicaState,
  readJson,
  SERVICES,
  type SupervisorState,
  writeAtomic,
} from "./platform-state";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: supervisor.ts <platform dir>");
  process.exit(2);
}
const p = paths(dir);
const settings = readJson<PlatformSettings>(p.settings);
if (!settings) {
  console.error(`${p.settings} is missing; start the platform with 'trainyard platform up'`);
  process.exit(2);
}
const fileEnv = parseEnvFile(readFileSync(p.env, "utf8"));
mkdirSync(p.logs, { recursive: true });
writeFileSync(p.pid, `${process.pid}\n`);

const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Replica extends ReplicaState {
  child?: ChildProcess;
  env: Record<string, string>;
  timer?: NodeJS.Timeout;
}

const state: Omit<SupervisorState, "services"> & { services: Replica[] } = {
  supervisorPid: process.pid,
  startedAt: new Date().toISOString(),
  url: `http://${settings.host === "0.0.0.0" ? "127.0.0.1" : settings.host}:${settings.port}`,
  stopping: false,
  services: [],
};

function save(): void {
  const view: SupervisorState = {
    ...state,
    services: state.services.map(({ child: _c, env: _e, timer: _t, ...r }) => r),
  };
  writeAtomic(p.state, `${JSON.stringify(view, null, 2)}\n`);
}

function start(r: Replica): void {
  const fd = openSync(r.log, "a");
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, `services/${r.service}/src/main.ts`)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...r.env },
    stdio: ["ignore", fd, fd],
  });
  r.child = child;
  r.pid = child.pid;
  r.state = "running";
  r.startedAt = new Date().toISOString();
  log(`started ${r.service}#${r.replica} pid ${child.pid}`);
  save();
  child.once("exit", (code, signal) => {
    r.child = undefined;
    r.pid = undefined;
    r.lastExit = { code, signal, at: new Date().toISOString() };
    if (state.stopping) {
      r.state = "stopped";
      save();
      return;
    }
    // Crash loop: back off; a replica that ran a minute starts again at once.
    const ranMs = Date.now() - Date.parse(r.startedAt ?? new Date().toISOString());
    if (ranMs > 60_000) r.restarts = 0;
    const delay = Math.min(1000 * 2 ** r.restarts, 30_000);
    r.restarts++;
    r.state = "restarting";
    log(`${r.service}#${r.replica} exited (code ${code}, signal ${signal}); restarting in ${delay} ms`);
    save();
    r.timer = setTimeout(() => start(r), delay);
  });
}

async function main(): Promise<void> {
  let apiIndex = 0;
  for (const service of SERVICES) {
    for (let i = 1; i <= settings!.replicas[service]; i++) {
      const env: Record<string, string> = { ...fileEnv, HEALTH_HOST: "127.0.0.1", LOG_LEVEL: process.env.LOG_LEVEL ?? "info" };
      let healthUrl: string;
      if (service === "api") {
        const port = settings!.port + apiIndex++;
        env.PORT = String(port);
        env.HOST = settings!.host;
        env.HEALTH_PORT = "0";
        healthUrl = `http://127.0.0.1:${port}/readyz`;
      } else {
        const hp = await freePort();
        env.HEALTH_PORT = String(hp);
        healthUrl = `http://127.0.0.1:${hp}/readyz`;
      }
      state.services.push({
        service,
        replica: i,
        healthUrl,
        log: join(p.logs, `${service}-${i}.log`),
        state: "starting",
        restarts: 0,
        env,
      });
    }
  }
  for (const r of state.services) start(r);
}

let stopping: Promise<void> | undefined;
function stop(signal: string): Promise<void> {
  stopping ??= (async () => {
    log(`${signal}: stopping every service`);
    state.stopping = true;
    save();
    for (const r of state.services) {
      if (r.timer) clearTimeout(r.timer);
      r.child?.kill("SIGTERM");
    }
    const deadline = Date.now() + 40_000;
    while (state.services.some((r) => r.child) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    for (const r of state.services) {
      if (r.child) {
        log(`${r.service}#${r.replica} did not stop in time; SIGKILL`);
        r.child.kill("SIGKILL");
      }
    }
    while (state.services.some((r) => r.child)) await new Promise((res) => setTimeout(res, 100));
    rmSync(p.state, { force: true });
    rmSync(p.pid, { force: true });
    log("stopped");
    process.exit(0);
  })();
  return stopping;
}
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGHUP", () => undefined);

main().catch((err) => {
  log(`failed: ${(err as Error).stack}`);
  void stop("error");
});
