import { readFileSync } from "node:fs";
import { verifyWebhook } from "@trainyard/alerting";
import type { AlertChannelView, BudgetView, JobView } from "@trainyard/common";
import { processesOfAttempt } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { getJob, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";
import { eventually, type ReceivedRequest, startHttpReceiver } from "./receivers";

/** Appends progress lines so the monitor (and the forecast) see a ratio; runs ~60 s unless stopped. */
const TRAIN = `
import json, os, time
path = os.environ["TRAINYARD_METRICS_FILE"]
for step in range(1, 601):
    time.sleep(0.1)
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, "total_steps": 600}) + "\\n")
`;

const INTERVAL_MS = 500;
/** 360 $/GPU-hour = 0.1 $/s: a 1 x 1 job crosses 50/80/100 % of a $1 budget at about 5, 8 and 10 s. */
const RATE = 360;
const PER_SECOND = RATE / 3600;

const seconds = (a?: string, b?: string) => (new Date(b!).getTime() - new Date(a!).getTime()) / 1000;

describe("live cost, budgets that stop jobs, alerts that arrive once", () => {
  let p: Platform;
  let hooks: Awaited<ReturnType<typeof startHttpReceiver>>;
  let channel: AlertChannelView & { secret: string };
  let cluster: { id: string; name: string };
  let stopped: JobView;
  let budget: BudgetView;
  let metricsWhileRunning = "";

  beforeAll(async () => {
    hooks = await startHttpReceiver();
    // Two cost replicas and two alerting replicas: each threshold must still arrive exactly once.
    p = await startPlatform({
      costs: 2,
      alertings: 2,
      env: { COST_INTERVAL_MS: String(INTERVAL_MS), ALERT_ALLOWED_HOSTS: "127.0.0.1", PUBLIC_URL: "http://trainyard.test" },
    });
    cluster = await registerCluster(p, { nodes: ["n1", "n2"], gpus: 1 });
    const pricing = await p.api("PUT", "/v1/pricing", { gpuTypes: { cpu: RATE } });
    expect(pricing.status, pricing.text).toBe(200);
    const ch = await p.api<AlertChannelView & { secret: string }>("POST", "/v1/alert-channels", {
      type: "webhook",
      name: "budget-hook",
      url: `${hooks.url}/hook`,
      events: ["budget.threshold", "budget.stop", "budget.forecast"],
    });
    expect(ch.status, ch.text).toBe(201);
    channel = ch.body;
  });
  afterAll(async () => {
    await p?.close();
    await hooks?.close();
  });

  const events = (type: string, threshold?: number) =>
    hooks.requests.filter((r) => {
      const b = JSON.parse(r.body);
      return b.type === type && (threshold === undefined || b.data.facts?.threshold === threshold);
    });
  const signed = (r: ReceivedRequest) =>
    verifyWebhook(
      channel.secret,
      {
        id: r.headers["webhook-id"] as string,
        timestamp: r.headers["webhook-timestamp"] as string,
        signature: r.headers["webhook-signature"] as string,
      },
      r.body,
    );

  it("alerts at 50 % and 80 % once each, stops the job at 100 % (STOPPED_BUDGET, nothing left), and refuses new jobs", async () => {
    const b = await p.api<BudgetView>("POST", "/v1/budgets", {
      name: "e2e-stop",
      scope: { type: "project", project: "budget-e2e" },
      limitUsd: 1,
      action: "stop",
    });
    expect(b.status, b.text).toBe(201);
    budget = b.body;
    expect(budget).toMatchObject({ thresholds: [50, 80, 100], period: "monthly", current: { spendUsd: 0, exhausted: false } });

    const id = await submitJob(p, {
      name: "burns-money",
      project: "budget-e2e",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["python3", "train.py"],
      files: { "train.py": TRAIN },
    });
    const running = await waitForJob(p, id, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) > 5, 60_000);
    const attemptId = running.attempts[0]!.id;
    // While it runs: per-job series of the active job.
    await eventually(async () => {
      metricsWhileRunning = (await Promise.all(p.metricsUrls.cost!.map((u) => fetch(u).then((r) => r.text())))).join("\n");
      // The forecast needs a burn rate and an ETA, so it may come a tick after the first series.
      return ["progress_ratio", "cost_usd", "forecast_cost_usd", "burn_rate_usd_per_hour"].every((m) =>
        metricsWhileRunning.includes(`trainyard_job_${m}{job_id="${id}"`),
      );
    }, 20_000);

    stopped = await waitForJob(p, id, undefined, 90_000);
    expect(stopped.status).toBe("STOPPED_BUDGET");
    expect(stopped.stopRequest).toMatchObject({ kind: "budget" });
    expect(processesOfAttempt(attemptId)).toEqual([]);

    // The webhook got 50 % and 80 % exactly once each (and 100 % and the stop), all validly signed.
    await eventually(() => events("budget.stop").length >= 1, 20_000, "the budget.stop alert");
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
    for (const t of [50, 80, 100]) expect(events("budget.threshold", t), `threshold ${t}`).toHaveLength(1);
    expect(events("budget.stop")).toHaveLength(1);
    expect(events("budget.forecast")).toHaveLength(1);
    expect(hooks.requests.every(signed)).toBe(true);
    expect(hooks.requests.every((r) => r.status === 200)).toBe(true);

    // Stored cost = hand calculation: 1 GPU x 360 $/h x the attempt's running time.
    const a = stopped.attempts[0]!;
    const ran = seconds(a.startedAt, a.endedAt);
    const hand = ran * PER_SECOND;
    const final = await eventually(async () => {
      const j = await getJob(p, id);
      return j.cost?.final && j;
    });
    expect(final.cost!.usd).toBeCloseTo(hand, 5);
    expect(final.cost!.gpuHours).toBeCloseTo(ran / 3600, 8);

    // The stop was decided within one interval of crossing the limit.
    const at100 = JSON.parse(events("budget.threshold", 100)[0]!.body).data.facts;
    const overshoot = at100.spendUsd - 1;
    expect(overshoot).toBeGreaterThanOrEqual(0);
    expect(overshoot).toBeLessThanOrEqual(2 * PER_SECOND * (INTERVAL_MS / 1000));
    const crossedAt = new Date(a.startedAt!).getTime() + 1000 / PER_SECOND;
    const stopLag = (new Date(stopped.stopRequest!.requestedAt).getTime() - crossedAt) / 1000;
    expect(stopLag).toBeLessThanOrEqual((2 * INTERVAL_MS) / 1000);

    console.log(
      `[budget] ran ${ran.toFixed(3)} s; hand ${hand.toFixed(6)} USD vs stored ${final.cost!.usd.toFixed(6)} USD; ` +
        `spend when the 100% claim was made ${at100.spendUsd} USD (overshoot ${overshoot.toFixed(4)} USD = ${(overshoot / PER_SECOND).toFixed(3)} s); ` +
        `stop requested ${stopLag.toFixed(3)} s after crossing; STOPPED_BUDGET ${seconds(stopped.stopRequest!.requestedAt, stopped.endedAt).toFixed(3)} s after the request`,
    );

    // New jobs in the exhausted scope are refused with a clear 4xx; other projects still run.
    const refused = await p.api<{ error: { message: string } }>("POST", "/v1/jobs", {
      name: "more",
      project: "budget-e2e",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["true"],
    });
    expect(refused.status).toBe(402);
    expect(refused.body.error.message).toMatch(/budget 'e2e-stop' of project 'budget-e2e' is exhausted: \$1\.\d+ of \$1\.0000/);
    const other = await p.api("POST", "/v1/jobs/dry-run", {
      name: "fine",
      project: "elsewhere",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["true"],
    });
    expect(other.status).toBe(200);

    const view = await p.api<BudgetView>("GET", `/v1/budgets/${budget.id}`);
    expect(view.body.current).toMatchObject({ exhausted: true });
    expect(view.body.current!.spendUsd).toBeCloseTo(final.cost!.usd, 5);
  });

  it("stops a job at its own maxCostUsd", async () => {
    const id = await submitJob(p, {
      name: "capped",
      project: "capped",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["python3", "-c", "import time; time.sleep(60)"],
      maxCostUsd: 0.3,
    });
    const job = await waitForJob(p, id, undefined, 60_000);
    expect(job.status).toBe("STOPPED_BUDGET");
    expect(job.attempts[0]!.reason).toMatch(/maxCostUsd/);
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
  });

  it("charges each period at its own price when the price changes mid-job", async () => {
    const id = await submitJob(p, {
      name: "repriced",
      project: "pricing",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["python3", "-c", "import time; time.sleep(4)"],
    });
    await waitForJob(p, id, (j) => j.status === "RUNNING", 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const change = await p.api<{ effectiveFrom: string }>("PUT", "/v1/pricing", { gpuTypes: { cpu: RATE * 10 } });
    expect(change.status).toBe(200);
    const done = await waitForJob(p, id, undefined, 60_000);
    expect(done.status).toBe("SUCCEEDED");
    const a = done.attempts[0]!;
    const before = seconds(a.startedAt, change.body.effectiveFrom);
    const after = seconds(change.body.effectiveFrom, a.endedAt);
    const hand = before * PER_SECOND + after * PER_SECOND * 10;
    const final = await eventually(async () => {
      const j = await getJob(p, id);
      return j.cost?.final && j;
    });
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
    expect(final.cost!.usd).toBeCloseTo(hand, 5);
    console.log(
      `[pricing] ${before.toFixed(3)} s at ${RATE} $/h + ${after.toFixed(3)} s at ${RATE * 10} $/h = ${hand.toFixed(6)} USD; stored ${final.cost!.usd.toFixed(6)} USD`,
    );
    // Put the original price back for what follows.
    await p.api("PUT", "/v1/pricing", { gpuTypes: { cpu: RATE } });
  });

  it("answers GET /v1/costs from stored data, by team, project and job", async () => {
    const byProject = await p.api<{ items: Array<{ key: string; project: string; usd: number }> }>(
      "GET",
      "/v1/costs?groupBy=project",
    );
    expect(byProject.status, byProject.text).toBe(200);
    const item = byProject.body.items.find((i) => i.project === "budget-e2e")!;
    // The job's final stored cost (the view taken at STOPPED_BUDGET may predate the final pricing).
    expect(item.usd).toBeCloseTo((await getJob(p, stopped.id)).cost!.usd, 5);
    const byJob = await p.api<{ items: Array<{ job: { id: string } }> }>("GET", "/v1/costs?groupBy=job");
    expect(byJob.body.items.map((i) => i.job.id)).toContain(stopped.id);
    const byTeam = await p.api<{ items: Array<{ key: string; jobs: number }> }>("GET", "/v1/costs?groupBy=team");
    expect(byTeam.body.items).toEqual([expect.objectContaining({ key: "default", jobs: 3 })]);
    for (const q of ["groupBy=galaxy", "from=yesterday", "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "bogus=1"])
      expect((await p.api("GET", `/v1/costs?${q}`)).status, q).toBe(400);
  });

  it("validates pricing and budgets with 4xx, never 5xx", async () => {
    const cases: Array<[string, string, unknown, number]> = [
      ["PUT", "/v1/pricing", { gpuTypes: { cpu: -1 } }, 400],
      ["PUT", "/v1/pricing", { nodes: [{ cluster: "nope", node: "n1", usdPerGpuHour: 1 }] }, 400],
      ["PUT", "/v1/pricing", { nodes: [{ cluster: cluster.name, node: "n9", usdPerGpuHour: 1 }] }, 400],
      ["POST", "/v1/budgets", { name: "x", scope: { type: "job", jobId: "0123456789abcdef01234567" }, limitUsd: 1 }, 400],
      ["POST", "/v1/budgets", { name: "x", scope: { type: "team" }, limitUsd: 0 }, 400],
      ["POST", "/v1/budgets", { name: "e2e-stop", scope: { type: "team" }, limitUsd: 5 }, 409],
      ["GET", "/v1/budgets/0123456789abcdef01234567", undefined, 404],
      ["PUT", "/v1/budgets/nope", { name: "x", scope: { type: "team" }, limitUsd: 1 }, 404],
    ];
    for (const [method, path, body, status] of cases)
      expect((await p.api(method, path, body)).status, `${method} ${path}`).toBe(status);
    const pricing = await p.api<{ current: { gpuTypes: Record<string, number> }; versions: unknown[] }>("GET", "/v1/pricing");
    expect(pricing.body.current.gpuTypes).toEqual({ cpu: RATE });
    expect(pricing.body.versions).toHaveLength(3);
  });

  it("/metrics exposes the money, job, budget, alert and queue series with their labels; deploy/ references only those", async () => {
    const scrape = async (urls: string[]) => (await Promise.all(urls.map((u) => fetch(u).then((r) => r.text())))).join("\n");
    // The money series come from a snapshot at most COST_METRICS_MAX_AGE_MS old: scrape until
    // one taken after the job ended is served.
    let cost = "";
    await eventually(
      async () => {
        cost = await scrape(p.metricsUrls.cost!);
        return cost.includes('status="STOPPED_BUDGET"') && !cost.includes(`job_id="${stopped.id}"`);
      },
      15_000,
      "a cost snapshot taken after the job ended",
    );
    const alerting = await scrape(p.metricsUrls.alerting!);
    const api = await scrape(p.metricsUrls.api!);
    const team = 'team="default"';
    expect(metricsWhileRunning).toMatch(
      new RegExp(`trainyard_job_cost_usd\\{job_id="${stopped.id}",job_name="burns-money",${team},project="budget-e2e"`),
    );
    expect(metricsWhileRunning).toMatch(/trainyard_job_forecast_cost_usd\{job_id=/);
    expect(metricsWhileRunning).toMatch(
      /trainyard_job_burn_rate_usd_per_hour\{job_id="[0-9a-f]+",job_name="burns-money",team="default",project="budget-e2e",service="cost"\} 360/,
    );
    // Per-job series exist only while the job is active.
    expect(cost).not.toContain(`job_id="${stopped.id}"`);
    expect(cost).toMatch(
      /trainyard_jobs\{status="STOPPED_BUDGET",framework="pytorch",team="default",project="budget-e2e",service="cost"\} 1/,
    );
    expect(cost).toMatch(
      /trainyard_month_to_date_spend_usd\{team="default",project="budget-e2e",gpu_type="cpu",service="cost"\} 1\.\d+/,
    );
    expect(cost).toMatch(
      /trainyard_month_to_date_gpu_hours\{team="default",project="budget-e2e",gpu_type="cpu",service="cost"\} 0\.00\d+/,
    );
    expect(cost).toMatch(
      new RegExp(
        `trainyard_budget_used_ratio\\{budget_id="${budget.id}",budget="e2e-stop",${team},scope="project:budget-e2e",action="stop",service="cost"\\} 1\\.\\d+`,
      ),
    );
    expect(cost).toMatch(/trainyard_cost_ticks_total\{outcome="ok",service="cost"\} \d+/);
    expect(alerting).toMatch(
      /trainyard_alerts_sent_total\{channel="budget-hook",channel_type="webhook",outcome="delivered",service="alerting"\} \d+/,
    );
    expect(api).toMatch(/trainyard_queue_depth\{queue="launch",state="waiting",service="api"\} \d+/);
    expect(api).toMatch(/trainyard_queue_depth\{queue="deliveries",state="delayed",service="api"\} \d+/);

    const exposed = new Set([...`${cost}\n${alerting}\n${api}`.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const root = new URL("..", import.meta.url);
    const referenced = new Set<string>();
    const dashboard = JSON.parse(readFileSync(new URL("deploy/grafana/trainyard.json", root), "utf8"));
    for (const m of JSON.stringify(dashboard).matchAll(/trainyard_[a-z0-9_]+/g)) referenced.add(m[0]);
    const rules = parse(readFileSync(new URL("deploy/prometheus/alerts.yml", root), "utf8"));
    for (const m of JSON.stringify(rules).matchAll(/trainyard_[a-z0-9_]+/g)) referenced.add(m[0]);
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, "");
    const missing = [...referenced].filter((n) => !exposed.has(n) && !exposed.has(base(n)));
    expect(missing).toEqual([]);
    expect(referenced.size).toBeGreaterThan(8);
  });
});
