import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asKey, issueKey, type Platform, registerCluster, startPlatform, waitForJob } from "./harness";

/** Debian's chromium, installed by scripts/infra/up.sh. */
const CHROMIUM = "/usr/bin/chromium";
const ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SHOTS = new URL("../docs/screenshots/", import.meta.url).pathname;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** Two ranks (one per node) that print a line and report a step every 0.3 s until stopped. */
const TICK = `
import json, os, time
rank = int(os.environ["RANK"])
metrics = os.environ.get("TRAINYARD_METRICS_FILE") if rank == 0 else None
total = 2000
for step in range(1, total + 1):
    time.sleep(0.3)
    loss = 2.0 / step ** 0.5
    print(f"rank {rank} step {step} loss {loss:.4f}", flush=True)
    if metrics:
        with open(metrics, "a") as f:
            f.write(json.dumps({"step": step, "total_steps": total, "loss": loss}) + "\\n")
`;

const missing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is not installed (scripts/infra/up.sh installs Debian's chromium)`;
if (missing && process.env.CI !== "true") console.warn(`[console test] skipping: ${missing}`);

describe.skipIf(missing !== undefined && process.env.CI !== "true")("web console in a real browser", () => {
  let p: Platform;
  let browser: Browser;
  let cluster: { id: string; name: string };
  let keys: { member: string; viewer: string; admin: string; stranger: string };
  let jobId: string;
  /** Every console error and uncaught page error, with the step it happened in. */
  const problems: string[] = [];
  const contexts: BrowserContext[] = [];

  /** A fresh tab (its own sessionStorage), logged in with `key`; `allow`: console errors this tab provokes on purpose. */
  async function open(key: string | undefined, viewport = DESKTOP, allow?: RegExp): Promise<Page> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" && !allow?.test(m.text())) problems.push(`console: ${m.text()} (${page.url()})`);
    });
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message} (${page.url()})`));
    if (key) {
      await page.goto(`${p.url}/ui/login`);
      await page.getByLabel("API key").fill(key);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL("**/ui/jobs");
    }
    return page;
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

  beforeAll(async () => {
    if (missing) throw new Error(`CI=true and ${missing}: the browser test fails instead of skipping`);
    mkdirSync(SHOTS, { recursive: true });
    p = await startPlatform();
    cluster = await registerCluster(p);
    const [member, viewer, admin, stranger] = await Promise.all([
      issueKey(p, "member"),
      issueKey(p, "viewer"),
      issueKey(p, "admin"),
      issueKey(p, "admin", "strangers"),
    ]);
    keys = { member: member!, viewer: viewer!, admin: admin!, stranger: stranger! };
    // A price for the nodes' GPUs and a team budget, so the money page has something to show.
    expect((await p.api("PUT", "/v1/pricing", { gpuTypes: { cpu: 36 } })).status).toBe(200);
    const budget = { name: "console-monthly", scope: { type: "team" }, limitUsd: 5, thresholds: [50, 80, 100], action: "alert" };
    expect((await p.api("POST", "/v1/budgets", budget)).status).toBe(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
    // The whole platform, four keys and a browser: slow on a busy two-core machine.
  }, 240_000);
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await p?.close();
  });

  it("logs in with a member key, watches a job run, follows node 2's log and cancels it from the UI", async () => {
    const login = await open(undefined);
    await login.goto(`${p.url}/ui/`);
    await login.waitForURL("**/ui/login");
    await expect(login.getByRole("heading", { name: "Trainyard console" }).isVisible()).resolves.toBe(true);
    await shot(login, "login");

    const page = await open(keys.member);
    const t0 = Date.now();
    const submitted = await p.api<{ id: string }>(
      "POST",
      "/v1/jobs",
      {
        name: "console-demo",
        project: "console",
        framework: "pytorch",
        cluster: cluster.name,
        resources: { nodes: 2, gpusPerNode: 1 },
        command: ["python3", "tick.py"],
        files: { "tick.py": TICK },
      },
      asKey(keys.member),
    );
    expect(submitted.status).toBe(202);
    jobId = submitted.body.id;

    // The job appears in the polled table, and its progress bar fills.
    const row = page.locator(`tr[data-job="${jobId}"]`);
    await row.waitFor({ timeout: 60_000 });
    const appearedMs = Date.now() - t0;
    const bar = row.getByRole("progressbar");
    await expect.poll(async () => Number(await bar.getAttribute("aria-valuenow")), { timeout: 120_000 }).toBeGreaterThan(0);
    const first = Number(await bar.getAttribute("aria-valuenow"));
    await shot(page, "jobs");

    // Job detail: the loss chart and the progress grow while it runs.
    await row.getByRole("link", { name: "console-demo" }).click();
    await page.waitForURL(`**/ui/jobs/${jobId}`);
    const chart = page.getByTestId("loss-chart");
    await expect.poll(async () => Number(await chart.getAttribute("data-points")), { timeout: 60_000 }).toBeGreaterThan(1);
    const points = Number(await chart.getAttribute("data-points"));
    await expect.poll(async () => Number(await chart.getAttribute("data-points")), { timeout: 60_000 }).toBeGreaterThan(points);
    const overall = page.getByRole("progressbar", { name: "Job progress" });
    await expect
      .poll(async () => Number(await overall.getAttribute("aria-valuenow")), { timeout: 60_000 })
      .toBeGreaterThan(first);

    // Live logs of node 2: rank 1 runs there; a new line of it arrives while we watch.
    await page.getByLabel("Node", { exact: true }).selectOption("n2");
    const log = page.getByRole("log", { name: "Log of n2" });
    await expect.poll(() => log.textContent(), { timeout: 60_000 }).toMatch(/rank 1 step \d+/);
    const lastStep = async () =>
      Math.max(...[...((await log.textContent()) ?? "").matchAll(/rank 1 step (\d+)/g)].map((m) => Number(m[1])));
    const seen = await lastStep();
    await expect.poll(lastStep, { timeout: 60_000 }).toBeGreaterThan(seen);
    expect(await log.textContent()).not.toMatch(/rank 0 step/);
    // Search narrows the lines to the matches.
    await page.getByLabel("Search", { exact: true }).fill(`rank 1 step ${seen} loss`);
    await expect.poll(() => log.locator(".log-line").count()).toBe(1);
    await page.getByLabel("Search", { exact: true }).fill("");
    await shot(page, "job-detail");

    // Cancel from the UI: the job ends CANCELLED on the page and in the API.
    await page.getByRole("button", { name: "Cancel job" }).click();
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent(), { timeout: 90_000 }).toContain("CANCELLED");
    expect((await waitForJob(p, jobId)).status).toBe("CANCELLED");
    await expect(page.getByRole("button", { name: "Cancel job" }).count()).resolves.toBe(0);

    // The loss chart outlives the job.
    await page.reload();
    await expect.poll(async () => Number(await chart.getAttribute("data-points")), { timeout: 30_000 }).toBeGreaterThan(points);
    console.log(`[console test] job row appeared ${appearedMs} ms after submit; chart had ${points}+ points`);
    expect(problems).toEqual([]);
  });

  it("shows a viewer no buttons that would be refused", async () => {
    const page = await open(keys.viewer);
    await page.locator(`tr[data-job="${jobId}"]`).waitFor();
    await expect(page.getByRole("button", { name: /Cancel selected/ }).count()).resolves.toBe(0);
    await page.goto(`${p.url}/ui/jobs/${jobId}`);
    await page.getByRole("heading", { name: /console-demo/ }).waitFor();
    await expect(page.getByTestId("role").textContent()).resolves.toBe("viewer");
    await expect(page.getByRole("button", { name: "Cancel job" }).count()).resolves.toBe(0);
    await expect(page.getByRole("button", { name: "Resubmit" }).count()).resolves.toBe(0);
    await page.goto(`${p.url}/ui/clusters`);
    await page.getByRole("heading", { name: `Cluster ${cluster.name}` }).waitFor();
    await expect(page.getByRole("button", { name: "Check nodes" }).count()).resolves.toBe(0);
    expect(problems).toEqual([]);
  });

  it("answers another team's job id with a not-found page", async () => {
    // The API's 404 for the other team's job is the point of this step; Chromium logs it as a console error.
    const page = await open(keys.stranger, DESKTOP, /the server responded with a status of 404/);
    await page.goto(`${p.url}/ui/jobs/${jobId}`);
    await page.getByRole("heading", { name: "Not found" }).waitFor();
    await expect(page.getByText("console-demo").count()).resolves.toBe(0);
    expect(problems).toEqual([]);
  });

  it("shows clusters, money and team admin pages, with a new key shown once; screenshots at 1280 px and phone width", async () => {
    const page = await open(keys.admin);
    await page.goto(`${p.url}/ui/clusters`);
    await page.getByRole("heading", { name: `Cluster ${cluster.name}` }).waitFor();
    await page.getByRole("button", { name: "Check nodes" }).click();
    await expect.poll(() => page.getByText("reachable; key matches").count(), { timeout: 60_000 }).toBe(2);
    await shot(page, "clusters");

    await page.goto(`${p.url}/ui/money`);
    await page.getByRole("heading", { name: "Month to date" }).waitFor();
    await page.getByTestId("cost-chart").waitFor();
    await shot(page, "money");

    await page.goto(`${p.url}/ui/team`);
    await page.getByRole("heading", { name: "API keys" }).waitFor();
    await page.getByRole("cell", { name: "job.cancel" }).first().waitFor();
    await shot(page, "team");
    await page.getByLabel("Name", { exact: true }).fill("ci-runner");
    await page.getByLabel("Role", { exact: true }).selectOption("viewer");
    await page.getByRole("button", { name: "Create key" }).click();
    const issued = page.getByLabel("New API key");
    await expect(issued.inputValue()).resolves.toMatch(/^tyk_[0-9a-f]{12}_/);
    await page.getByRole("button", { name: "Done" }).click();
    await expect(issued.count()).resolves.toBe(0);
    await expect.poll(() => page.getByRole("cell", { name: "ci-runner" }).count()).toBe(1);

    // Keyboard: the skip link is the first stop on a fresh page.
    await page.reload();
    await page.getByRole("heading", { name: "API keys" }).waitFor();
    await page.keyboard.press("Tab");
    await expect(page.evaluate<string | undefined>("document.activeElement?.textContent")).resolves.toBe("Skip to content");

    const phone = await open(keys.member, PHONE);
    await phone.locator(`tr[data-job="${jobId}"]`).waitFor();
    await shot(phone, "jobs-phone");
    await phone.goto(`${p.url}/ui/jobs/${jobId}`);
    await phone.getByTestId("loss-chart").waitFor();
    await expect.poll(async () => Number(await phone.getByTestId("loss-chart").getAttribute("data-points"))).toBeGreaterThan(1);
    // Nothing wider than the screen but the scrollable tables and the log.
    const overflow = await phone.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(phone, "job-detail-phone");
    expect(problems).toEqual([]);
  });
});
