import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { verifyWebhook } from "@trainyard/alerting";
import { apiRoutes } from "@trainyard/api";
import { QUEUE_NAMES } from "@trainyard/common";
import { Redis } from "ioredis";
import mongoose from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";
import { eventually, startHttpReceiver } from "./receivers";

/**
 * Every secret the platform is given, after a real job has failed and alerted: none may appear
 * in plaintext in MongoDB, in Redis (queue payloads, locks, counters), in any log line at debug
 * level, or in any API response other than the one that shows it once.
 */
describe("secrets never leak", () => {
  let p: Platform;
  let hooks: Awaited<ReturnType<typeof startHttpReceiver>>;
  const logLines: string[] = [];
  const responses: string[] = [];
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    hooks = await startHttpReceiver();
    p = await startPlatform({
      env: { LOG_LEVEL: "debug", ALERT_ALLOWED_HOSTS: "127.0.0.1", ALERT_RETRY_BASE_MS: "300" },
      logSink: { write: (line: string) => void logLines.push(line) },
    });
  });
  afterAll(async () => {
    await p?.close();
    await hooks?.close();
  });

  /** Calls the API and keeps the response for the final scan. */
  async function api<T>(method: string, path: string, body?: unknown, token?: string) {
    const res = await p.api<T>(method, path, body, token ? { authorization: `Bearer ${token}` } : {});
    responses.push(`${method} ${path} ${res.status} ${res.text}`);
    return res;
  }

  it("holds for SSH keys, API keys, webhook secrets, Slack URLs and storage credentials", async () => {
    // The secrets, each handed to the API once.
    const privateKey = readFileSync(p.infra.clientKeyPath, "utf8");
    secrets.sshKeyBody = privateKey.split("\n").find((l) => l.length > 40 && !l.startsWith("-----"))!;
    const cluster = await registerCluster(p);
    responses.push(JSON.stringify(cluster));

    const issued = await p.api<{ key: string }>("POST", "/v1/teams/default/keys", { name: "scan", role: "admin" });
    expect(issued.status).toBe(201);
    secrets.apiKey = issued.body.key;
    secrets.apiKeySecretPart = issued.body.key.slice("tyk_".length + 13);
    secrets.bootstrapToken = p.token;

    secrets.webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
    const hook = await p.api("POST", "/v1/alert-channels", {
      type: "webhook",
      name: "scan-hook",
      url: `${hooks.url}/hook`,
      secret: secrets.webhookSecret,
      events: ["job.failed"],
    });
    expect(hook.status, hook.text).toBe(201);
    secrets.slackToken = `T0${randomBytes(8).toString("hex")}/B0${randomBytes(8).toString("hex")}`;
    const slack = await p.api("POST", "/v1/alert-channels", {
      type: "slack",
      name: "scan-slack",
      url: `${hooks.url}/services/${secrets.slackToken}`,
      events: ["job.failed"],
    });
    expect(slack.status, slack.text).toBe(201);
    expect(slack.text).not.toContain(secrets.slackToken);

    secrets.storageSecret = `s3-${randomBytes(20).toString("hex")}`;
    const store = await api("POST", "/v1/storage-credentials", {
      name: "scan-store",
      credentials: {
        backend: "s3",
        bucket: "scan",
        endpoint: "http://127.0.0.1:9",
        accessKeyId: "AKIASCAN",
        secretAccessKey: secrets.storageSecret,
      },
    });
    expect(store.status, store.text).toBe(201);

    // A real job that fails, so the launcher, monitor and alerting all handle this team's secrets.
    const id = await submitJob(p, {
      name: "fails",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["python3", "-c", "import sys; sys.exit(3)"],
      retry: { maxRetries: 0 },
    });
    expect((await waitForJob(p, id)).status).toBe("FAILED");
    // Both channels were delivered to, and the webhook is signed with the secret the API was given.
    await eventually(() => hooks.on("/hook").length > 0, 30_000, "the webhook delivery");
    await eventually(() => hooks.on(`/services/${secrets.slackToken}`).length > 0, 30_000, "the Slack delivery");
    const delivered = hooks.on("/hook")[0]!;
    const h = delivered.headers;
    expect(
      verifyWebhook(
        secrets.webhookSecret,
        { id: String(h["webhook-id"]), timestamp: String(h["webhook-timestamp"]), signature: String(h["webhook-signature"]) },
        delivered.body,
      ),
    ).toBe(true);
    // The new key works, so it is a real one.
    expect((await api("GET", "/v1/me", undefined, secrets.apiKey)).status).toBe(200);

    // Every GET the API has, on this team's real objects.
    const jobs = (await api<{ items: Array<{ id: string }> }>("GET", "/v1/jobs")).body.items;
    const channels = (await api<{ items: Array<{ id: string }> }>("GET", "/v1/alert-channels")).body.items;
    const fill: Record<string, string> = { team: "default", name: "scan-store", cid: "latest" };
    for (const route of apiRoutes({} as never).filter((r) => r.method === "get")) {
      const resource = route.path.split("/")[2];
      const id = resource === "jobs" ? jobs[0]!.id : resource === "clusters" ? cluster.id : (channels[0]?.id ?? "");
      await api(
        "GET",
        route.path.replace(/\{([A-Za-z]+)\}/g, (_m, k: string) => fill[k] ?? id),
      );
    }
    await api("GET", "/openapi.json");

    // --- the scan ---
    const conn = await mongoose.createConnection(p.infra.mongoUrl, { dbName: p.env.MONGO_DB }).asPromise();
    let mongoText = "";
    try {
      for (const c of await conn.db!.listCollections().toArray()) {
        mongoText += JSON.stringify(await conn.db!.collection(c.name).find({}).toArray());
      }
    } finally {
      await conn.close();
    }
    const redis = new Redis(p.infra.redisUrl);
    let redisText = "";
    try {
      for (const key of await redis.keys(`${p.env.TRAINYARD_QUEUE_PREFIX}:*`)) {
        const type = await redis.type(key);
        const value =
          type === "string"
            ? await redis.get(key)
            : type === "hash"
              ? await redis.hgetall(key)
              : type === "list"
                ? await redis.lrange(key, 0, -1)
                : type === "zset"
                  ? await redis.zrange(key, 0, -1)
                  : type === "set"
                    ? await redis.smembers(key)
                    : type === "stream"
                      ? await redis.xrange(key, "-", "+")
                      : "";
        redisText += `${key} ${JSON.stringify(value)}\n`;
      }
    } finally {
      redis.disconnect();
    }
    // The scan saw what it should: queue payloads and log lines of this run.
    expect(QUEUE_NAMES.some((q) => redisText.includes(`:${q}:`))).toBe(true);
    expect(redisText).toContain(id);
    expect(logLines.join("")).toContain("cluster registered");
    expect(logLines.join("")).toContain("API key issued");
    expect(mongoText).toContain("sealed");

    const logs = logLines.join("");
    const answers = responses.join("\n");
    for (const [name, secret] of Object.entries(secrets)) {
      expect(mongoText.includes(secret), `${name} in MongoDB`).toBe(false);
      expect(redisText.includes(secret), `${name} in Redis`).toBe(false);
      expect(logs.includes(secret), `${name} in logs`).toBe(false);
      expect(answers.includes(secret), `${name} in API responses`).toBe(false);
    }
  });
});
