import { verifyWebhook } from "@trainyard/alerting";
import type { AlertChannelView, AlertDeliveryView, QueuePayload } from "@trainyard/common";
import { QueueBus } from "@trainyard/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Platform, startPlatform } from "./harness";
import { eventually, startHttpReceiver, startSmtpReceiver } from "./receivers";

type Receiver = Awaited<ReturnType<typeof startHttpReceiver>>;
type Smtp = Awaited<ReturnType<typeof startSmtpReceiver>>;

describe("alert delivery to real receivers", () => {
  let p: Platform;
  let hooks: Receiver;
  let smtp: Smtp;
  let redis: Redis;
  let bus: QueueBus;
  const channels: Record<string, AlertChannelView & { secret?: string }> = {};

  beforeAll(async () => {
    hooks = await startHttpReceiver({
      "/flaky": [{ status: 500 }, { status: 200 }],
      "/forbidden": [{ status: 403 }],
      "/slack": [{ status: 429, headers: { "retry-after": "2" } }, { status: 200 }],
    });
    smtp = await startSmtpReceiver();
    p = await startPlatform({
      env: {
        ALERT_ALLOWED_HOSTS: "127.0.0.1",
        ALERT_RETRY_BASE_MS: "300",
        ALERT_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
        ALERT_EMAIL_FROM: "Trainyard <alerts@trainyard.test>",
        PUBLIC_URL: "http://trainyard.test",
      },
    });
    redis = new Redis(p.infra.redisUrl, { maxRetriesPerRequest: null });
    bus = new QueueBus(redis, p.env.TRAINYARD_QUEUE_PREFIX!);
    const make = async (body: Record<string, unknown>) => {
      const res = await p.api<AlertChannelView & { secret?: string }>("POST", "/v1/alert-channels", body);
      expect(res.status, res.text).toBe(201);
      channels[body.name as string] = res.body;
    };
    const routing = { events: ["job.failed"], minSeverity: "warning" };
    await make({ type: "webhook", name: "flaky", url: `${hooks.url}/flaky`, ...routing });
    await make({ type: "webhook", name: "forbidden", url: `${hooks.url}/forbidden`, ...routing });
    await make({ type: "slack", name: "slack", url: `${hooks.url}/slack`, ...routing });
    await make({ type: "email", name: "mail", to: ["oncall@example.com"], ...routing });
  });
  afterAll(async () => {
    await bus?.close();
    redis?.disconnect();
    await p?.close();
    await hooks?.close();
    await smtp?.close();
  });

  const send = (e: Partial<QueuePayload<"alerts">>) =>
    bus.send("alerts", {
      type: "job.failed",
      severity: "critical",
      team: "default",
      message: "train-42: node n2 rank 3 exited with code 7",
      at: new Date().toISOString(),
      ...e,
    });
  const deliveries = async (q = "") =>
    (await p.api<{ items: AlertDeliveryView[] }>("GET", `/v1/alerts?limit=200${q}`)).body.items;

  it("keeps secrets: the generated webhook secret is shown once, Slack URLs only by origin", async () => {
    expect(channels.flaky!.secret).toMatch(/^whsec_/);
    const got = await p.api<AlertChannelView & { secret?: string }>("GET", `/v1/alert-channels/${channels.flaky!.id}`);
    expect(got.status).toBe(200);
    expect(got.body.secret).toBeUndefined();
    expect(got.body.hasSecret).toBe(true);
    const list = await p.api("GET", "/v1/alert-channels");
    expect(list.text).not.toContain(channels.flaky!.secret!.slice(6));
    expect(channels.slack!.url).toBe(hooks.url);
  });

  it("refuses channel URLs on private, loopback or link-local addresses unless allowlisted; bad input is a 400", async () => {
    for (const url of [
      "http://169.254.169.254/latest/meta-data",
      "http://10.1.2.3/hook",
      "http://127.0.0.5:8080/x",
      "http://[::1]:9/",
    ]) {
      const res = await p.api<{ error: { message: string } }>("POST", "/v1/alert-channels", {
        type: "webhook",
        name: "bad",
        url,
      });
      expect(res.status, url).toBe(400);
      expect(res.body.error.message).toMatch(/ALERT_ALLOWED_HOSTS/);
    }
    const bad = await p.api<{ error: { message: string } }>("POST", "/v1/alert-channels", {
      type: "pager",
      name: "x",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("webhook, slack, email");
    const badSecret = await p.api("POST", "/v1/alert-channels", {
      type: "webhook",
      name: "x",
      url: `${hooks.url}/ok`,
      secret: "plain",
    });
    expect(badSecret.status).toBe(400);
    expect((await p.api("GET", "/v1/alerts?state=lost")).status).toBe(400);
    expect((await p.api("GET", "/v1/alert-channels/nope")).status).toBe(404);
  });

  it("delivers: 500 then 200 once; 429 + Retry-After: 2 after >= 2 s once; 403 never retried; e-mail over SMTP", async () => {
    const t0 = Date.now();
    await send({ dedupKey: "e2e:first" });

    // Webhook answering 500 then 200: delivered once, on the second attempt, with a valid signature.
    const flaky = await eventually(() => hooks.on("/flaky").length >= 2 && hooks.on("/flaky"), 30_000, "flaky webhook");
    const ok = flaky.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of flaky) {
      expect(
        verifyWebhook(
          channels.flaky!.secret!,
          {
            id: r.headers["webhook-id"] as string,
            timestamp: r.headers["webhook-timestamp"] as string,
            signature: r.headers["webhook-signature"] as string,
          },
          r.body,
        ),
      ).toBe(true);
    }
    // Same webhook-id on the retry: receivers can de-duplicate.
    expect(flaky[0]!.headers["webhook-id"]).toBe(flaky[1]!.headers["webhook-id"]);
    expect(JSON.parse(ok[0]!.body)).toMatchObject({ type: "job.failed", data: { team: "default", severity: "critical" } });

    // Slack-compatible receiver answering 429 with Retry-After: 2.
    const slack = await eventually(() => hooks.on("/slack").length >= 2 && hooks.on("/slack"), 30_000, "slack receiver");
    const waited = slack[1]!.at - slack[0]!.at;
    expect(slack.map((r) => r.status)).toEqual([429, 200]);
    expect(waited).toBeGreaterThanOrEqual(2000);
    const msg = JSON.parse(slack[1]!.body);
    expect(msg.text).toContain("Job failed");
    expect(JSON.stringify(msg.blocks)).toContain("*Team:* default");

    // E-mail received by a real SMTP server.
    const mail = await eventually(() => smtp.mails[0], 30_000, "e-mail");
    expect(mail.to).toEqual(["oncall@example.com"]);
    expect(mail.raw).toMatch(/Subject: \[Trainyard\] \[CRITICAL\] Job failed/);
    expect(mail.raw).toContain("rank 3 exited with code 7");

    // 403: one request, failed for good.
    await new Promise((r) => setTimeout(r, 2500));
    expect(hooks.on("/forbidden")).toHaveLength(1);
    expect(hooks.on("/flaky")).toHaveLength(2);
    expect(hooks.on("/slack")).toHaveLength(2);
    expect(smtp.mails).toHaveLength(1);

    const log = await deliveries();
    const byChannel = (name: string) => log.filter((d) => d.channel.name === name);
    expect(byChannel("flaky")[0]).toMatchObject({
      state: "delivered",
      attempts: [
        { outcome: "retry", status: 500 },
        { outcome: "delivered", status: 200 },
      ],
    });
    expect(byChannel("forbidden")[0]).toMatchObject({ state: "failed", attempts: [{ outcome: "failed", status: 403 }] });
    expect(byChannel("slack")[0]).toMatchObject({
      state: "delivered",
      attempts: [{ outcome: "retry", status: 429 }, { outcome: "delivered" }],
    });
    expect(byChannel("mail")[0]).toMatchObject({ state: "delivered", attempts: [{ outcome: "delivered" }] });
    console.log(
      `[alerts] 500->200 retried after ${flaky[1]!.at - flaky[0]!.at} ms; 429 (Retry-After: 2) retried after ${waited} ms; e-mail after ${mail.at - t0} ms`,
    );
  });

  it("de-duplicates by key within the repeat interval, and routes by type and severity", async () => {
    const before = hooks.requests.length;
    await send({ dedupKey: "e2e:first" });
    await send({ type: "job.succeeded", severity: "info", dedupKey: "e2e:other" });
    await send({ severity: "info", dedupKey: "e2e:low" });
    const suppressed = await eventually(
      async () => {
        const s = await deliveries("&state=suppressed");
        return s.length >= 4 && s;
      },
      20_000,
      "suppressed deliveries",
    );
    expect(suppressed.every((d) => d.dedupKey === "e2e:first" && d.attempts.length === 0)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(hooks.requests.length).toBe(before);
    expect(smtp.mails).toHaveLength(1);
    // job.succeeded is opt-in and info is below these channels' minimum: neither was routed.
    expect(await deliveries("&type=job.succeeded")).toEqual([]);
    expect((await deliveries()).filter((d) => d.dedupKey === "e2e:low")).toEqual([]);
  });

  it("counts deliveries by channel and outcome in /metrics", async () => {
    const text = (await Promise.all(p.metricsUrls.alerting!.map((u) => fetch(u).then((r) => r.text())))).join("\n");
    expect(text).toMatch(
      /trainyard_alerts_sent_total\{channel="flaky",channel_type="webhook",outcome="retry",service="alerting"\} 1/,
    );
    expect(text).toMatch(
      /trainyard_alerts_sent_total\{channel="flaky",channel_type="webhook",outcome="delivered",service="alerting"\} 1/,
    );
    expect(text).toMatch(
      /trainyard_alerts_sent_total\{channel="forbidden",channel_type="webhook",outcome="failed",service="alerting"\} 1/,
    );
    expect(text).toMatch(
      /trainyard_alerts_sent_total\{channel="mail",channel_type="email",outcome="suppressed",service="alerting"\} 1/,
    );
  });
});
