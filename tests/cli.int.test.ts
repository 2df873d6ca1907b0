/**
 * The `trainyard` CLI end to end, as a user runs it: `platform up` starts the five services
 * (two launchers) in the background, then login, teams and keys, cluster add from YAML with a key
 * file, a 2-node DDP job from examples/ followed to its end, logs -f, ps --json, a failing job,
 * cancel, costs; `platform down` stops everything. Real processes, real Redis/FerretDB/sshd nodes.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QUEUE_NAMES } from "@trainyard/common";
import { loadInfra, REPO_ROOT } from "@trainyard/testkit";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import mongoose from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testPortRange } from "./harness";

const BIN = join(REPO_ROOT, "packages/cli/bin/trainyard");
const infra = loadInfra();
const work = mkdtempSync(join(tmpdir(), "ty-cli-int-"));
const id = `${Date.now().toString(36)}${process.pid}`;
const dir = join(work, "platform");
const db = `ty_cli_${id}`;
const prefix = `tycli-${id}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  TRAINYARD_CONFIG: join(work, "config.json"),
  TRAINYARD_PLATFORM_DIR: dir,
  TRAINYARD_URL: "",
  TRAINYARD_TOKEN: "",
  TRAINYARD_CONTEXT: "",
  LOG_LEVEL: "warn",
  MONITOR_INTERVAL_MS: "500",
  RECONCILE_INTERVAL_MS: "2000",
  STOP_GRACE_MS: "3000",
};
let port = 0;

function cli(args: string[], input?: string) {
  const r = spawnSync(BIN, args, { env, cwd: work, encoding: "utf8", timeout: 170_000, ...(input ? { input } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

interface Status {
  running: boolean;
  url: string;
  supervisorPid: number;
  services: Array<{ service: string; pid?: number; ready: boolean; restarts: number }>;
}
let upStatus: Status | undefined;

beforeAll(async () => {
  port = await freePort();
});

afterAll(async () => {
  // Whatever a failed test left: stop the platform, drop its database and queues.
  cli(["platform", "down"]);
  const redis = new Redis(infra.redisUrl);
  for (const name of QUEUE_NAMES) {
    const q = new Queue(name, { connection: redis, prefix });
    await q.obliterate({ force: true });
    await q.close();
  }
  const left = await redis.keys(`${prefix}:*`);
  if (left.length) await redis.del(...left);
  redis.disconnect();
  const conn = await mongoose.createConnection(infra.mongoUrl, { dbName: db }).asPromise();
  await conn.dropDatabase();
  await conn.close();
  rmSync(work, { recursive: true, force: true });
});

describe.sequential("trainyard platform and CLI", () => {
  it("platform up starts every replica in the background; status shows them ready; the API answers", async () => {
    const up = cli([
      "platform",
      "up",
      "--no-infra",
      "--port",
      String(port),
      "--db",
      db,
      "--queue-prefix",
      prefix,
      "--launcher",
      "2",
      "--json",
    ]);
    expect(up.code, up.stderr).toBe(0);
    upStatus = JSON.parse(up.stdout) as Status;
    expect(upStatus.services.map((s) => s.service).sort()).toEqual([
      "alerting",
      "api",
      "cost",
      "launcher",
      "launcher",
      "monitor",
    ]);
    const st = cli(["platform", "status", "--json"]);
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as Status;
    expect(status.running).toBe(true);
    expect(status.services.every((s) => s.ready)).toBe(true);
    expect(status.url).toBe(`http://127.0.0.1:${port}`);
    // The operator context was saved: the bootstrap key works against the API.
    const me = cli(["whoami", "--json"]);
    expect(me.code, me.stderr).toBe(0);
    expect(JSON.parse(me.stdout)).toMatchObject({ role: "operator" });
    expect((await fetch(`${status.url}/readyz`)).status).toBe(200);
    expect(me.stdout + up.stdout + up.stderr).not.toMatch(/tyk_|API_ADMIN_TOKEN=/);
  });

  it("an operator creates a team and its admin key; the admin logs in as another context", () => {
    expect(cli(["teams", "create", "vision", "--max-gpus", "8"]).code).toBe(0);
    const key = cli(["keys", "create", "--team", "vision", "--name", "vision-admin", "--role", "admin"]);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout.trim()).toMatch(/^tyk_[0-9a-f]{12}_/);
    const login = cli(["login", "--url", `http://127.0.0.1:${port}`, "--token", "-", "--name", "vision"], key.stdout);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain("team vision, role admin");
    const me = JSON.parse(cli(["whoami", "--json"]).stdout);
    expect(me).toMatchObject({ team: "vision", role: "admin" });
    // The other context is still there; --context picks it for one command.
    expect(JSON.parse(cli(["--context", "local", "whoami", "--json"]).stdout)).toMatchObject({ role: "operator" });
    // A bad key is refused by the API as is: exit 4 with its status and message.
    const bad = cli(["login", "--url", `http://127.0.0.1:${port}`, "--token", "tyk_000000000000_nope"]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/error: 401 /);
  });

  it("cluster add reads the key from the file the YAML names; check pins; ls lists it", () => {
    copyFileSync(infra.clientKeyPath, join(work, "id_ed25519"));
    const nodes = infra.nodes.slice(0, 2);
    const { min, max } = testPortRange();
    writeFileSync(
      join(work, "cluster.yaml"),
      [
        "name: local",
        "nodes:",
        ...nodes.map(
          (n) =>
            `  - {name: ${n.name}, host: ${n.host}, port: ${n.port}, user: ${n.user}, gpus: 2, gpuType: cpu, workRoot: ${n.workRoot}}`,
        ),
        "ssh:",
        "  privateKeyFile: id_ed25519",
        "  hostKeys:",
        ...nodes.map((n) => `    ${n.name}: "${n.hostKeyFingerprint}"`),
        "env:",
        ...Object.entries(infra.nodeEnv).map(([k, v]) => `  ${k}: "${v}"`),
        `ports: {min: ${min}, max: ${max}}`,
        "",
      ].join("\n"),
    );
    const add = cli(["cluster", "add", "-f", "cluster.yaml", "--json"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).not.toContain("PRIVATE KEY");
    expect(JSON.parse(add.stdout)).toMatchObject({ name: "local", team: "vision" });
    const check = cli(["cluster", "check", "local", "--json"]);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout).nodes.every((n: { reachable: boolean }) => n.reachable)).toBe(true);
    expect(JSON.parse(cli(["cluster", "ls", "--json"]).stdout).items.map((c: { name: string }) => c.name)).toEqual(["local"]);
  });

  let ddpId = "";
  it("submit follows a 2-node DDP job from examples/ to SUCCEEDED and exits 0; logs -f ends with 0", () => {
    const sub = cli(["submit", "-f", join(REPO_ROOT, "examples/pytorch-ddp/job.json"), "--json"]);
    expect(sub.code, sub.stderr).toBe(0);
    const job = JSON.parse(sub.stdout);
    ddpId = job.id;
    expect(job.status).toBe("SUCCEEDED");
    expect(job.attempts[0].nodes).toHaveLength(2);
    expect(sub.stderr).toMatch(/RUNNING/);
    expect(sub.stderr).toMatch(/step 40\/40/);
    expect(sub.stderr).toContain("allreduce");
    const logs = cli(["logs", ddpId, "-f"]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("step 40/40");
    const nd = cli(["logs", ddpId, "-f", "--rank", "1", "--json"]);
    expect(nd.code, nd.stderr).toBe(0);
    const events = nd.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.at(-1)).toMatchObject({ type: "end", status: "SUCCEEDED", node: "n2" });
    expect(events.filter((e) => e.type === "log").length).toBeGreaterThan(0);
    const tail = cli(["logs", ddpId, "--tail", "1"]);
    expect(tail.stdout.trim().split("\n")).toHaveLength(1);
    const ps = cli(["ps", "--json"]);
    expect(ps.code).toBe(0);
    expect(JSON.parse(ps.stdout).items.map((j: { id: string }) => j.id)).toContain(ddpId);
    expect(JSON.parse(cli(["status", ddpId, "--json"]).stdout).status).toBe("SUCCEEDED");
    expect(JSON.parse(cli(["checkpoints", ddpId, "--json"]).stdout).items.length).toBeGreaterThan(0);
  });

  it("a failing job makes submit exit non-zero", () => {
    writeFileSync(
      join(work, "fail.yaml"),
      "name: fails\nframework: command\ncluster: local\nresources: {nodes: 1, gpusPerNode: 1}\ncommand: [python3, -c, 'import sys; print(\"bye\"); sys.exit(3)']\n",
    );
    const sub = cli(["submit", "-f", "fail.yaml"]);
    expect(sub.code, sub.stderr).toBe(1);
    expect(sub.stderr).toMatch(/ended FAILED/);
    expect(sub.stdout).toContain("bye");
  });

  it("cancel stops a running job; following it exits 7", () => {
    writeFileSync(
      join(work, "sleep.yaml"),
      "name: sleeper\nframework: command\ncluster: local\nresources: {nodes: 2, gpusPerNode: 1}\ncommand: [python3, -c, 'import time; print(\"up\", flush=True); time.sleep(600)']\n",
    );
    const sub = cli(["submit", "-f", "sleep.yaml", "--detach"]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    for (let i = 0; i < 60; i++) {
      if (JSON.parse(cli(["status", jobId, "--json"]).stdout).status === "RUNNING") break;
      spawnSync("sleep", ["1"]);
    }
    const cancel = cli(["cancel", jobId, "--wait", "--json"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(JSON.parse(cancel.stdout).status).toBe("CANCELLED");
    expect(cli(["logs", jobId, "-f"]).code).toBe(7);
    const again = cli(["cancel", jobId]);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/409 job is already CANCELLED/);
    expect(cli(["status", "000000000000000000000000"]).code).toBe(5);
  });

  it("costs --json shows the job", () => {
    let items: Array<{ key: string; gpuHours: number }> = [];
    for (let i = 0; i < 30 && !items.some((x) => x.key === ddpId); i++) {
      const r = cli(["costs", "--by", "job", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      items = JSON.parse(r.stdout).items;
      if (!items.some((x) => x.key === ddpId)) spawnSync("sleep", ["1"]);
    }
    const mine = items.find((x) => x.key === ddpId);
    expect(mine?.gpuHours).toBeGreaterThan(0);
    const byProject = JSON.parse(cli(["costs", "--project", "demo", "--json"]).stdout);
    expect(byProject.items.map((x: { project: string }) => x.project)).toEqual(["demo"]);
    expect(cli(["budgets", "--json"]).code).toBe(0);
    expect(JSON.parse(cli(["keys", "--json"]).stdout).items.map((k: { name: string }) => k.name)).toContain("vision-admin");
  });

  it("the supervisor restarts a service that dies", () => {
    const before = JSON.parse(cli(["platform", "status", "--json"]).stdout) as Status;
    const victim = before.services.find((s) => s.service === "launcher" && s.pid)!;
    process.kill(victim.pid!, "SIGKILL");
    let after = before;
    for (let i = 0; i < 40; i++) {
      spawnSync("sleep", ["1"]);
      const st = cli(["platform", "status", "--json"]);
      after = JSON.parse(st.stdout);
      const again = after.services.find(
        (s) => s.service === "launcher" && s.pid !== undefined && s.pid !== victim.pid && s.restarts > 0,
      );
      if (again && st.code === 0) break;
    }
    const restarted = after.services.filter((s) => s.service === "launcher");
    expect(restarted.some((s) => s.restarts === 1 && s.pid !== victim.pid)).toBe(true);
    expect(after.services.every((s) => s.ready)).toBe(true);
    upStatus = after;
  });

  it("platform down stops every service", () => {
    const down = cli(["platform", "down"]);
    expect(down.code, down.stderr).toBe(0);
    const st = cli(["platform", "status", "--json"]);
    expect(st.code).toBe(3);
    expect(JSON.parse(st.stdout).running).toBe(false);
    const pids = [upStatus!.supervisorPid, ...upStatus!.services.map((s) => s.pid!)];
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});
