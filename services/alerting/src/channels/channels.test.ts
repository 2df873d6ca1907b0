import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseAllowlist } from "@trainyard/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postGuarded } from "./http";
import { type AlertData, emailContent, slackPayload, webhookBody } from "./message";
import { signWebhook, verifyWebhook, webhookHeaders } from "./webhook";

describe("Standard Webhooks signatures", () => {
  it("match the specification's reference vector", () => {
    // From the Standard Webhooks reference libraries' test suite.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const sig = signWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(sig).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("verify on the receiving side and refuse tampering or stale timestamps", () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const body = '{"type":"job.failed"}';
    const now = Date.now();
    const h = webhookHeaders(secret, "msg_1", Math.floor(now / 1000), body);
    const headers = { id: h["webhook-id"], timestamp: h["webhook-timestamp"], signature: h["webhook-signature"] };
    expect(verifyWebhook(secret, headers, body)).toBe(true);
    expect(verifyWebhook(secret, headers, `${body} `)).toBe(false);
    expect(verifyWebhook(`whsec_${Buffer.alloc(32, 8).toString("base64")}`, headers, body)).toBe(false);
    expect(verifyWebhook(secret, headers, body, { now: now + 600_000 })).toBe(false);
    expect(verifyWebhook(secret, { ...headers, signature: `v1,bogus ${headers.signature}` }, body)).toBe(true);
  });
});

const data: AlertData = {
  type: "budget.threshold",
  severity: "warning",
  message: "Budget 'ml' reached 80%: $8.0000 of $10.0000 in 2026-03",
  team: "default",
  project: "vision",
  job: { id: "0123456789abcdef01234567", name: "resnet<1>" },
  costUsd: 8,
  link: "https://trainyard.example/v1/jobs/0123456789abcdef01234567",
  facts: { threshold: 80 },
  at: "2026-03-10T10:00:00.000Z",
};

describe("messages", () => {
  it("Slack: readable text with job, team, project, cost and a link; mrkdwn escaped", () => {
    const p = slackPayload(data);
    expect(p.text).toBe("[WARNING] Budget threshold reached: Budget 'ml' reached 80%: $8.0000 of $10.0000 in 2026-03");
    const all = JSON.stringify(p.blocks);
    for (const s of ["resnet&lt;1&gt;", "*Team:* default", "*Project:* vision", "*Cost:* $8.0000", "|Open in Trainyard>"])
      expect(all).toContain(s);
  });

  it("e-mail: a one-line subject and a plain-text body", () => {
    const m = emailContent({ ...data, message: "two\nlines" });
    expect(m.subject).toBe("[Trainyard] [WARNING] Budget threshold reached: two lines");
    expect(m.text).toContain("Project: vision");
    expect(m.text).toContain(data.link!);
  });

  it("webhook: {type, timestamp, data}", () => {
    expect(JSON.parse(webhookBody(data, "d1"))).toMatchObject({
      type: "budget.threshold",
      timestamp: data.at,
      data: { severity: "warning", team: "default", deliveryId: "d1", costUsd: 8 },
    });
  });
});

describe("guarded POST", () => {
  let server: Server;
  let port: number;
  let answer: { status: number; headers?: Record<string, string> } = { status: 200 };
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(answer.status, answer.headers ?? {}).end("body text"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("refuses loopback unless allowlisted, by IP and by a name that resolves to it", async () => {
    const none = parseAllowlist("");
    expect(await postGuarded(`http://127.0.0.1:${port}/`, "{}", {}, { allow: none, timeoutMs: 2000 })).toMatchObject({
      ok: false,
      retry: false,
      error: expect.stringContaining("ALERT_ALLOWED_HOSTS"),
    });
    expect(await postGuarded(`http://localhost:${port}/`, "{}", {}, { allow: none, timeoutMs: 2000 })).toMatchObject({
      ok: false,
      retry: false,
    });
    const allow = parseAllowlist("127.0.0.1,::1");
    expect(await postGuarded(`http://127.0.0.1:${port}/`, "{}", {}, { allow, timeoutMs: 2000 })).toEqual({
      ok: true,
      status: 200,
    });
  });

  it("classifies answers and network errors", async () => {
    const allow = parseAllowlist("127.0.0.1");
    answer = { status: 429, headers: { "retry-after": "3" } };
    expect(await postGuarded(`http://127.0.0.1:${port}/`, "{}", {}, { allow, timeoutMs: 2000 })).toMatchObject({
      retryAfterMs: 3000,
    });
    answer = { status: 302, headers: { location: "http://169.254.169.254/" } };
    expect(await postGuarded(`http://127.0.0.1:${port}/`, "{}", {}, { allow, timeoutMs: 2000 })).toMatchObject({
      ok: false,
      retry: false,
    });
    expect(await postGuarded("http://127.0.0.1:1/", "{}", {}, { allow, timeoutMs: 2000 })).toMatchObject({
      ok: false,
      retry: true,
      error: expect.stringContaining("ECONNREFUSED"),
    });
  });
});
