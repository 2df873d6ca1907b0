import type { JobView } from "@trainyard/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJob, type Platform, registerCluster, startPlatform, waitForJob } from "./harness";

/** Most GPUs held at once, from each attempt's claim (createdAt) to the job's end. */
function peakGpus(jobs: JobView[]): number {
  const events: Array<[number, number]> = [];
  for (const j of jobs) {
    const a = j.attempts[0]!;
    const gpus = a.nodes.reduce((sum, n) => sum + n.gpuIndices.length, 0);
    events.push([new Date(a.createdAt).getTime(), gpus], [new Date(j.endedAt!).getTime(), -gpus]);
  }
  // Ends before starts at the same instant: a slot freed and taken in one millisecond is not an overlap.
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) {
    now += d;
    peak = Math.max(peak, now);
  }
  return peak;
}

describe("team quotas", () => {
  let p: Platform;
  beforeAll(async () => {
    // Two launchers race for every job, as replicas would.
    p = await startPlatform({ launchers: 2 });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("20 concurrent submissions never hold more GPUs than the quota; the rest wait in QUEUED with the reason", async () => {
    const me = await p.api<{ team: string }>("GET", "/v1/me");
    const quota = await p.api("PUT", `/v1/teams/${me.body.team}/quota`, { maxGpus: 3 });
    expect(quota.status, quota.text).toBe(200);
    // 6 GPUs of capacity, so only the quota holds the jobs back.
    const cluster = await registerCluster(p, { nodes: ["n1", "n2", "n3"], gpus: 2 });
    const specs = Array.from({ length: 20 }, (_, i) => ({
      name: `q-${i}`,
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: i % 5 === 0 ? 2 : 1 },
      command: ["python3", "-c", "import time; time.sleep(3)"],
    }));
    const submitted = await Promise.all(specs.map((s) => p.api<{ id: string; status: string }>("POST", "/v1/jobs", s)));
    for (const r of submitted) expect(r.status, r.text).toBe(202);
    const ids = submitted.map((r) => r.body.id);

    // While the first ones run, the others say why they wait.
    let reason: string | undefined;
    const deadline = Date.now() + 60_000;
    while (!reason && Date.now() < deadline) {
      const listed = await p.api<{ items: JobView[] }>("GET", "/v1/jobs?status=QUEUED&limit=200");
      reason = listed.body.items.find((j) => j.waitingReason?.startsWith("waiting for team quota"))?.waitingReason;
      if (!reason) await new Promise((r) => setTimeout(r, 200));
    }
    expect(reason).toMatch(/^waiting for team quota: \d of 3 GPUs in use, the job needs [12]$/);

    for (const id of ids) expect((await waitForJob(p, id, undefined, 240_000)).status).toBe("SUCCEEDED");
    const jobs = await Promise.all(ids.map((id) => getJob(p, id)));
    const peak = peakGpus(jobs);
    expect(peak).toBeLessThanOrEqual(3);
    // ...and the quota was really used, not trivially met by running one job at a time.
    expect(peak).toBeGreaterThanOrEqual(2);
    for (const j of jobs) expect(j.waitingReason).toBeUndefined();
  });
});
