import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asKey, EXAMPLE_TRAIN, issueKey, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

interface Sample {
  at: string;
  attemptId: string;
  step: number;
  totalSteps?: number;
  loss?: number;
}

describe("job history for the console: progress samples and resubmit", () => {
  let p: Platform;
  let cluster: { id: string; name: string };
  let jobId: string;
  let viewer: string;
  let member: string;
  let stranger: string;
  const secret = "sk-live-console-test-0123456789";

  beforeAll(async () => {
    p = await startPlatform();
    cluster = await registerCluster(p);
    [viewer, member, stranger] = await Promise.all([
      issueKey(p, "viewer"),
      issueKey(p, "member"),
      issueKey(p, "admin", "strangers"),
    ]);
    jobId = await submitJob(p, {
      name: "mlp-history",
      project: "console",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "train.py", "--steps", "24", "--sleep", "0.1"],
      files: { "train.py": EXAMPLE_TRAIN },
      env: { SEED: "1", API_TOKEN: secret },
    });
    const job = await waitForJob(p, jobId);
    expect(job.status, JSON.stringify(job.failure)).toBe("SUCCEEDED");
  });
  afterAll(async () => {
    await p?.close();
  });

  it("keeps every step's loss after the job ended, in order, for the team's viewers only", async () => {
    const res = await p.api<{ items: Sample[] }>("GET", `/v1/jobs/${jobId}/progress`, undefined, asKey(viewer));
    expect(res.status).toBe(200);
    const steps = res.body.items.map((s) => s.step);
    expect(steps.length).toBeGreaterThan(1);
    expect(steps.at(-1)).toBe(24);
    // Strictly increasing within the one attempt: nothing recorded twice.
    expect(
      steps.every((s, i) => i === 0 || s > steps[i - 1]!),
      steps.join(","),
    ).toBe(true);
    for (const s of res.body.items) {
      expect(s).toMatchObject({ totalSteps: 24, attemptId: expect.any(String) });
      expect(Number.isFinite(s.loss)).toBe(true);
    }
    const limited = await p.api<{ items: Sample[] }>("GET", `/v1/jobs/${jobId}/progress?limit=1`);
    expect(limited.body.items.map((s) => s.step)).toEqual([24]);

    expect((await p.api("GET", `/v1/jobs/${jobId}/progress`, undefined, asKey(stranger))).status).toBe(404);
    expect((await p.api("GET", `/v1/jobs/${jobId}/progress?limit=0`)).status).toBe(400);
    expect((await p.api("GET", "/v1/jobs/000000000000000000000000/progress")).status).toBe(404);
  });

  it("resubmits a job as a new one from its stored spec, for members, without echoing secrets", async () => {
    expect((await p.api("POST", `/v1/jobs/${jobId}/resubmit`, undefined, asKey(viewer))).status).toBe(403);
    expect((await p.api("POST", `/v1/jobs/${jobId}/resubmit`, undefined, asKey(stranger))).status).toBe(404);

    const res = await p.api<{ id: string; status: string }>("POST", `/v1/jobs/${jobId}/resubmit`, undefined, asKey(member));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.any(String), status: "QUEUED" });
    expect(res.body.id).not.toBe(jobId);
    expect(res.text).not.toContain(secret);

    const again = await waitForJob(p, res.body.id);
    expect(again.status, JSON.stringify(again.failure)).toBe("SUCCEEDED");
    expect(again.spec).toMatchObject({
      name: "mlp-history",
      project: "console",
      command: ["python3", "train.py", "--steps", "24", "--sleep", "0.1"],
    });
    expect(JSON.stringify(again)).not.toContain(secret);

    const audit = await p.api<{ items: Array<{ action: string; target: string }> }>("GET", "/v1/audit?action=job.resubmit");
    expect(audit.body.items).toEqual([expect.objectContaining({ action: "job.resubmit", target: jobId })]);
  });
});
