import { readFileSync } from "node:fs";
import { processesOfAttempt } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_TRAIN, getJob, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

/** The metrics lines an attempt's rank 0 wrote on node n1. */
function metricsOf(p: Platform, jobId: string, attemptId: string): Array<Record<string, unknown>> {
  const n1 = p.infra.nodes.find((n) => n.name === "n1")!;
  return readFileSync(`${n1.workRoot}/jobs/${jobId}/${attemptId}/metrics.jsonl`, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("checkpoint-aware preemption on real nodes", () => {
  let p: Platform;
  beforeAll(async () => {
    // Two launchers race for every pass, as replicas would: each victim is still preempted once.
    p = await startPlatform({ launchers: 2 });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("a higher-priority job preempts a preemptible one at its next checkpoint; the first resumes from it and succeeds", async () => {
    // One node with 1 GPU: the two jobs cannot run together.
    const cluster = await registerCluster(p, { nodes: ["n1"], gpus: 1 });
    const low = await submitJob(p, {
      name: "low-preemptible",
      framework: "pytorch",
      cluster: cluster.name,
      priority: 0,
      preemptible: true,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["python3", "train.py", "--steps", "60", "--sleep", "0.2", "--checkpoint-every", "5"],
      files: { "train.py": EXAMPLE_TRAIN },
    });
    await waitForJob(p, low, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 3, 120_000);

    const high = await submitJob(p, {
      name: "urgent",
      framework: "command",
      cluster: cluster.name,
      priority: 10,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["true"],
    });
    // The first job is stopped at a checkpoint and goes back to the queue, not counted as a failure.
    const requeued = await waitForJob(p, low, (j) => j.attempts[0]?.outcome !== undefined, 120_000);
    const first = requeued.attempts[0]!;
    expect(first.outcome).toBe("PREEMPTED");
    expect(first.reason).toMatch(new RegExp(`^preempted by job 'urgent' \\(${high}\\) at its checkpoint at step \\d+$`));
    const stoppedAt = Number(first.reason!.match(/step (\d+)$/)![1]);
    expect(stoppedAt % 5).toBe(0);
    expect(processesOfAttempt(first.id)).toEqual([]);

    // The second job runs (it waited for the preempted one to stop) and succeeds.
    const h = await waitForJob(p, high, undefined, 120_000);
    expect(h.status).toBe("SUCCEEDED");
    expect(new Date(h.attempts[0]!.createdAt).getTime()).toBeGreaterThanOrEqual(new Date(first.endedAt!).getTime());

    // The first resumes and succeeds; the preemption used none of its retries (maxRetries 0).
    const done = await waitForJob(p, low, undefined, 180_000);
    expect(done.status, JSON.stringify(done.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
    expect(done.attempts).toHaveLength(2);
    const second = done.attempts[1]!;
    // It resumed from the latest checkpoint its first attempt registered: the one the stop was
    // triggered by, or one the first attempt still wrote while the stop was under way.
    const registered = (
      await p.api<{ items: Array<{ step: number; attemptNumber: number }> }>("GET", `/v1/jobs/${low}/checkpoints`)
    ).body.items
      .filter((c) => c.attemptNumber === 1)
      .map((c) => c.step);
    const latest = Math.max(...registered);
    expect(latest).toBeGreaterThanOrEqual(stoppedAt);
    const metrics = metricsOf(p, low, second.id);
    expect(metrics[0]!.resumed_at_step).toBe(latest);
    expect(metrics.find((m) => typeof m.step === "number" && m.checkpoint === undefined)!.step).toBe(latest + 1);
    expect(done.progress).toMatchObject({ step: 60, ratio: 1 });
  }, 600_000);

  it("never preempts a job that is not preemptible, nor a preemptible one of equal priority", async () => {
    const cluster = await registerCluster(p, { nodes: ["n2", "n3"], gpus: 1 });
    const spec = (name: string, extra: Record<string, unknown>) => ({
      name,
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: ["sleep", "4"],
      ...extra,
    });
    const pinned = await submitJob(p, spec("pinned", { priority: 0 }));
    const peer = await submitJob(p, spec("peer", { priority: 5, preemptible: true }));
    for (const id of [pinned, peer]) await waitForJob(p, id, (j) => j.status === "RUNNING", 60_000);
    const urgent = await submitJob(p, spec("urgent", { priority: 5, command: ["true"] }));
    // A pass has looked at the head and found nothing it may preempt.
    const waiting = await waitForJob(p, urgent, (j) => j.waitingReason?.startsWith("waiting for capacity") ?? false, 60_000);
    expect(waiting.waitingReason).not.toMatch(/preempting/);

    for (const id of [pinned, peer]) {
      const j = await waitForJob(p, id, undefined, 60_000);
      expect(j.status).toBe("SUCCEEDED");
      expect(j.attempts.map((a) => a.outcome)).toEqual(["SUCCEEDED"]);
    }
    expect((await waitForJob(p, urgent, undefined, 60_000)).status).toBe("SUCCEEDED");
    expect((await getJob(p, urgent)).attempts).toHaveLength(1);
  }, 300_000);
});
