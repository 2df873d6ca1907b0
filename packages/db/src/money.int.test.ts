import { randomBytes } from "node:crypto";
import { alertChannelInputSchema, budgetInputSchema, jobSpecSchema } from "@trainyard/common";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Repos } from "./index";
import { openTestStore, type TestStore } from "./testing";

let conn: Connection;
let repos: Repos;

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore("money");
  ({ conn, repos } = store);
});
afterAll(() => store?.close());

async function startedJob(project: string, status: "RUNNING" | "SUCCEEDED") {
  const spec = jobSpecSchema.parse({
    name: "j",
    project,
    framework: "pytorch",
    cluster: "c",
    resources: { nodes: 1, gpusPerNode: 1 },
    command: ["true"],
  });
  const { job } = await repos.jobs.create({ team: "default", spec, clusterId: new Types.ObjectId(), clusterName: "c" });
  await conn.db!.collection("jobs").updateOne(
    { _id: job._id },
    {
      $set: {
        status,
        startedAt: new Date(Date.now() - 60_000),
        ...(status === "SUCCEEDED" ? { endedAt: new Date() } : {}),
        attempts: [{ id: "a1", number: 1, nodes: [{ name: "n1", gpuIndices: [0] }], startedAt: new Date(Date.now() - 60_000) }],
        currentAttemptId: "a1",
        costPending: true, // as JobRepo.markRunning files a started job for the cost sweep
      },
    },
  );
  return job._id;
}

describe("budget claims", () => {
  it("let exactly one of many concurrent claimers act (unique insert)", async () => {
    const key = `budget:x:r1:2026-01:t50-${randomBytes(3).toString("hex")}`;
    const results = await Promise.all(
      Array.from({ length: 12 }, () => repos.budgets.claim({ key, kind: "threshold", period: "2026-01", threshold: 50 })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("refuse a duplicate budget name with 409 and bump the revision on update", async () => {
    const spec = budgetInputSchema.parse({ name: "b1", scope: { type: "team" }, limitUsd: 10 });
    const b = await repos.budgets.create("default", spec);
    await expect(repos.budgets.create("default", spec)).rejects.toMatchObject({ status: 409 });
    const updated = await repos.budgets.update("default", b._id.toString(), { ...spec, limitUsd: 20 });
    expect(updated.revision).toBe(2);
    expect(updated.limitUsd).toBe(20);
  });
});

describe("job costs", () => {
  it("never overwrite a later pricing with an earlier one, nor a final one with a running one", async () => {
    const id = await startedJob("p1", "RUNNING");
    const cost = (usd: number, at: number, final = false) => ({
      usd,
      gpuHours: 1,
      burnUsdPerHour: 1,
      lines: [],
      final,
      updatedAt: new Date(at),
    });
    const t = Date.now();
    expect(await repos.jobCosts.setCost(id, cost(2, t))).toBe(true);
    expect(await repos.jobCosts.setCost(id, cost(1, t - 1000))).toBe(false);
    expect(await repos.jobCosts.setCost(id, cost(3, t + 1000, true))).toBe(true);
    expect(await repos.jobCosts.setCost(id, cost(4, t + 2000, false))).toBe(false);
    expect((await repos.jobs.byId(id))?.cost?.usd).toBe(3);
  });

  it("list what still needs pricing, and count jobs by labels", async () => {
    const running = await startedJob("p2", "RUNNING");
    const done = await startedJob("p2", "SUCCEEDED");
    let ids = (await repos.jobCosts.listToPrice()).map((j) => j._id.toString());
    expect(ids).toContain(running.toString());
    expect(ids).toContain(done.toString());
    await repos.jobCosts.setCost(done, { usd: 1, gpuHours: 1, burnUsdPerHour: 0, lines: [], final: true, updatedAt: new Date() });
    ids = (await repos.jobCosts.listToPrice()).map((j) => j._id.toString());
    expect(ids).not.toContain(done.toString());
    expect(ids).toContain(running.toString());
    const counts = await repos.jobCosts.countByLabels();
    expect(counts).toContainEqual({ status: "RUNNING", framework: "pytorch", team: "default", project: "p2", count: 1 });
    const inScope = await repos.jobCosts.listInScope({ team: "default", project: "p2" }, new Date(Date.now() - 3_600_000));
    expect(inScope).toHaveLength(2);
  });
});

describe("jobs started before costPending", () => {
  it("are marked for the cost sweep once, unless priced to the end", async () => {
    const [unpriced, priced] = [await startedJob("p3", "SUCCEEDED"), await startedJob("p3", "SUCCEEDED")];
    // As an older version left them: started, no costPending; one already has its final cost.
    await conn.db!.collection("jobs").updateMany({ _id: { $in: [unpriced, priced] } }, { $unset: { costPending: 1 } });
    await conn.db!.collection("jobs").updateOne({ _id: priced }, { $set: { cost: { usd: 1, final: true } } });
    expect((await repos.jobCosts.listToPrice()).map((j) => j._id.toString())).not.toContain(unpriced.toString());
    await conn.db!.collection("migrations").deleteOne({ _id: "job-cost-pending" as never });
    expect(await repos.jobCosts.markUnpricedJobs()).toBeGreaterThanOrEqual(1);
    const ids = (await repos.jobCosts.listToPrice()).map((j) => j._id.toString());
    expect(ids).toContain(unpriced.toString());
    expect(ids).not.toContain(priced.toString());
    expect(await repos.jobCosts.markUnpricedJobs()).toBe(0);
  });
});

describe("alert channels and deliveries", () => {
  it("seal the webhook secret and the Slack URL at rest", async () => {
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const hook = await repos.alerts.createChannel(
      "default",
      alertChannelInputSchema.parse({ type: "webhook", name: "hook", url: "https://example.com/h", secret }),
    );
    const slackUrl = "https://hooks.slack.com/services/T000/B000/topsecrettoken";
    const slack = await repos.alerts.createChannel(
      "default",
      alertChannelInputSchema.parse({ type: "slack", name: "sl", url: slackUrl }),
    );
    const raw = JSON.stringify(await conn.db!.collection("alert_channels").find({}).toArray());
    expect(raw).not.toContain(secret.slice(6));
    expect(raw).not.toContain("topsecrettoken");
    expect(repos.alerts.openSecrets(hook)).toEqual({ url: "https://example.com/h", secret });
    expect(repos.alerts.openSecrets(slack)).toEqual({ url: slackUrl });
    // Replacing a webhook without a secret keeps the old one.
    const replaced = await repos.alerts.replaceChannel(
      "default",
      hook._id.toString(),
      alertChannelInputSchema.parse({ type: "webhook", name: "hook", url: "https://example.com/other" }),
    );
    expect(repos.alerts.openSecrets(replaced)).toEqual({ url: "https://example.com/other", secret });
  });

  it("let one worker claim each attempt", async () => {
    const id = new Types.ObjectId().toString();
    const results = await Promise.all(Array.from({ length: 8 }, () => repos.alerts.claimAttempt(id, 1, new Date())));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
