/**
 * The demo: starts the five services as separate processes (as in production), registers the
 * local sshd nodes as a cluster, submits examples/pytorch-ddp/job.json over HTTP and follows it.
 * Exits 0 when the job SUCCEEDED. TRAINYARD_EXAMPLE picks another example's job spec, e.g.
 * `tensorflow-mwms`, `mpi`, `horovod` or `horovod/job-elastic.json`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const infra = JSON.parse(readFileSync(join(process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra", "infra.json"), "utf8"));
const port = Number(process.env.PORT ?? 8080);
const api = `http://127.0.0.1:${port}`;
const token = randomBytes(24).toString("hex");
const runId = Date.now().toString(36);
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  REDIS_URL: infra.redisUrl,
  MONGO_URL: infra.mongoUrl,
  MONGO_DB: `trainyard_demo_${runId}`,
  TRAINYARD_QUEUE_PREFIX: `trainyard-demo-${runId}`,
  TRAINYARD_SECRET_KEY: randomBytes(32).toString("base64"),
  API_ADMIN_TOKEN: token,
  PORT: String(port),
  HOST: "127.0.0.1",
  HEALTH_HOST: "127.0.0.1",
  MONITOR_INTERVAL_MS: "1000",
  LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
};

const services = ["api", "launcher", "monitor", "cost", "alerting"];
const children: ChildProcess[] = services.map((svc, i) =>
  spawn(join(root, "node_modules/.bin/tsx"), [join(root, `services/${svc}/src/main.ts`)], {
    env: { ...env, HEALTH_PORT: String(i === 0 ? 0 : 9100 + i) },
    stdio: ["ignore", "inherit", "inherit"],
  }),
);

const say = (msg: string) => console.log(`[demo] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The key requests go out with: the bootstrap token until the demo team's own keys exist. */
let key = token;

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function stopServices() {
  for (const c of children) c.kill("SIGTERM");
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once("exit", r)))));
}

async function main(): Promise<number> {
  say(`starting api, launcher, monitor, cost and alerting (api on ${api})`);
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${api}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 120) throw new Error("the API did not become ready in 60 s");
    await sleep(500);
  }
  // A team of its own, as a real deployment would have: its admin registers the cluster, a member
  // key runs the job. The bootstrap token only creates the team and issues the keys.
  const team = await call("POST", "/v1/teams", { name: "demo", quota: { maxGpus: 8 } });
  if (team.status !== 201) throw new Error(`team creation failed: ${team.status} ${team.text}`);
  const issue = async (role: string) => {
    const res = await call("POST", "/v1/teams/demo/keys", { name: `demo-${role}`, role, expiresInDays: 1 });
    if (res.status !== 201) throw new Error(`key issue failed: ${res.status} ${res.text}`);
    return JSON.parse(res.text) as { key: string; prefix: string };
  };
  const [teamAdmin, member] = [await issue("admin"), await issue("member")];
  say(`team 'demo' (quota 8 GPUs) with an admin key ${teamAdmin.prefix}… and a member key ${member.prefix}…`);
  key = teamAdmin.key;

  const nodes = infra.nodes.slice(0, 2);
  const cluster = await call("POST", "/v1/clusters", {
    name: "local",
    nodes: nodes.map((n: Record<string, unknown>) => ({
      name: n.name,
      host: n.host,
      port: n.port,
      user: n.user,
      gpus: 2,
      gpuType: "cpu",
      workRoot: n.workRoot,
    })),
    ssh: {
      privateKey: readFileSync(infra.clientKeyPath, "utf8"),
      hostKeys: Object.fromEntries(nodes.map((n: Record<string, string>) => [n.name, n.hostKeyFingerprint])),
    },
    env: infra.nodeEnv,
  });
  if (cluster.status !== 201) throw new Error(`cluster registration failed: ${cluster.status} ${cluster.text}`);
  say(
    `cluster 'local' registered: ${nodes.map((n: Record<string, string>) => `${n.name}=${n.user}@${n.host}:${n.port}`).join(", ")}`,
  );
  const check = await call("POST", `/v1/clusters/local/check`);
  say(`cluster check: ${check.text}`);

  const example = process.env.TRAINYARD_EXAMPLE ?? "pytorch-ddp";
  const jobFile = join(root, "examples", example.endsWith(".json") ? example : join(example, "job.json"));
  const exampleDir = dirname(jobFile);
  const spec = JSON.parse(readFileSync(jobFile, "utf8"));
  for (const [name, content] of Object.entries(spec.files as Record<string, string>)) {
    if (content.startsWith("@")) spec.files[name] = readFileSync(join(exampleDir, content.slice(1)), "utf8");
  }
  key = member.key;
  const submitted = await call("POST", "/v1/jobs", spec);
  if (submitted.status !== 202) throw new Error(`submit failed: ${submitted.status} ${submitted.text}`);
  const { id } = JSON.parse(submitted.text);
  say(`job ${id} submitted: ${spec.resources.nodes} nodes x ${spec.resources.gpusPerNode} ranks`);

  let offset = 0;
  let lastLine = "";
  for (;;) {
    const job = JSON.parse((await call("GET", `/v1/jobs/${id}`)).text);
    if (job.attempts?.length) {
      const logs = await call("GET", `/v1/jobs/${id}/logs?node=n1&from=${offset}`);
      if (logs.status === 200) {
        offset = Number(logs.headers.get("x-log-next-offset") ?? offset);
        for (const line of logs.text.split("\n").filter(Boolean)) console.log(`  n1 | ${line}`);
      }
    }
    const p = job.progress;
    const line = `status ${job.status}${p ? `, step ${p.step}/${p.totalSteps ?? "?"}${p.ratio !== undefined ? ` (${Math.round(p.ratio * 100)}%)` : ""}${p.loss !== undefined ? `, loss ${p.loss.toFixed(4)}` : ""}` : ""}${job.waitingReason ? `, ${job.waitingReason}` : ""}`;
    if (line !== lastLine) say(line);
    lastLine = line;
    if (["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"].includes(job.status)) {
      for (const a of job.attempts) {
        say(
          `attempt ${a.number} (${a.id}): ${a.nodes.map((n: Record<string, unknown>) => `${n.name} ${n.state} exit=${n.exitCode ?? "-"}`).join(", ")}`,
        );
      }
      if (job.failure) say(`failure: ${job.failure.reason}`);
      const n2 = await call("GET", `/v1/jobs/${id}/logs?node=n2`);
      for (const l of n2.text.split("\n").filter((x) => x.includes("allreduce"))) console.log(`  n2 | ${l}`);
      say(`job ${id} ended ${job.status}`);
      return job.status === "SUCCEEDED" ? 0 : 1;
    }
    await sleep(1000);
  }
}

main()
  .then(async (code) => {
    await stopServices();
    process.exit(code);
  })
  .catch(async (err) => {
    console.error(`[demo] ${(err as Error).message}`);
    await stopServices();
    process.exit(1);
  });
