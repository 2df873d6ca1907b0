import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { processesOfAttempt } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_TRAIN, getJob, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

/** A job whose ranks wait until killed, except the rank that exits early with a code. */
const rankScript = `
import os, sys, time
rank = int(os.environ["RANK"])
fail_rank = int(os.environ.get("FAIL_RANK", "-1"))
print(f"rank {rank} of {os.environ['WORLD_SIZE']} up", flush=True)
if rank == fail_rank:
    time.sleep(float(os.environ.get("FAIL_AFTER", "1")))
    print(f"rank {rank} failing", flush=True)
    sys.exit(int(os.environ.get("FAIL_CODE", "7")))
time.sleep(600)
`;

describe("core slice: PyTorch DDP on 2 local SSH nodes", () => {
  let p: Platform;
  let cluster: { id: string; name: string };

  beforeAll(async () => {
    p = await startPlatform();
    cluster = await registerCluster(p);
  });
  afterAll(async () => {
    await p?.close();
  });

  it("runs the example to SUCCEEDED on 2 nodes x 2 ranks, with progress and readable logs", async () => {
    const id = await submitJob(p, {
      name: "mlp-ddp",
      project: "demo",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "train.py", "--steps", "20", "--sleep", "0.02"],
      files: { "train.py": EXAMPLE_TRAIN },
      env: { SEED: "1" },
    });
    const job = await waitForJob(p, id);
    expect(job.status, JSON.stringify(job.failure)).toBe("SUCCEEDED");
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0]!.nodes.map((n) => [n.name, n.state, n.exitCode])).toEqual([
      ["n1", "exited", 0],
      ["n2", "exited", 0],
    ]);
    expect(job.progress).toMatchObject({ step: 20, totalSteps: 20, ratio: 1 });

    // Every rank took part in one all-reduce over a world of 4: 0+1+2+3 = 6.
    const n1 = await p.api("GET", `/v1/jobs/${id}/logs?node=n1`);
    const n2 = await p.api("GET", `/v1/jobs/${id}/logs?node=n2`);
    expect(n1.status).toBe(200);
    expect(n1.text).toContain("step 20/20");
    for (const r of [0, 1]) expect(n1.text).toContain(`rank ${r}/4 allreduce=6`);
    for (const r of [2, 3]) expect(n2.text).toContain(`rank ${r}/4 allreduce=6`);
  });

  it("stops the whole gang on every node and fails the job with node, rank and exit code when a rank fails", async () => {
    const id = await submitJob(p, {
      name: "one-rank-fails",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "ranks.py"],
      files: { "ranks.py": rankScript },
      env: { FAIL_RANK: "3", FAIL_CODE: "7", FAIL_AFTER: "2" },
    });
    const job = await waitForJob(p, id);
    expect(job.status).toBe("FAILED");
    expect(job.failure).toMatchObject({ node: "n2", rank: 3, exitCode: 7 });
    expect(job.failure!.reason).toContain("node n2");
    const attempt = job.attempts[0]!;
    expect(processesOfAttempt(attempt.id)).toEqual([]);
    const n1 = attempt.nodes.find((n) => n.name === "n1")!;
    expect(["stopped", "exited"]).toContain(n1.state);
  });

  it("cancels a RUNNING job: CANCELLED, and nothing of the attempt is left on any node", async () => {
    const id = await submitJob(p, {
      name: "to-cancel",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "ranks.py"],
      files: { "ranks.py": rankScript },
    });
    const running = await waitForJob(p, id, (j) => j.status === "RUNNING");
    const attemptId = running.attempts[0]!.id;
    // Wait until the ranks are really up before cancelling.
    await waitForJob(p, id, (j) => j.attempts[0]!.nodes.every((n) => (n.logTail ?? "").includes("up")), 60_000);
    expect(processesOfAttempt(attemptId).length).toBeGreaterThan(0);
    const cancel = await p.api("POST", `/v1/jobs/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const job = await waitForJob(p, id);
    expect(job.status).toBe("CANCELLED");
    expect(processesOfAttempt(attemptId)).toEqual([]);
    expect((await p.api("POST", `/v1/jobs/${id}/cancel`)).status).toBe(409);
  });

  it("passes $(…), backticks, ';', quotes and newlines in args and env to the process literally", async () => {
    const canary = `/tmp/ty-canary-${randomBytes(4).toString("hex")}`;
    const hostile = `$(touch ${canary}) \`touch ${canary}\`; touch ${canary} 'single' "double" \\back\nnext line`;
    const id = await submitJob(p, {
      name: "hostile-input",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1 },
      command: [
        "python3",
        "-c",
        "import os, sys, json; c = (',', ':'); print('ARGS=' + json.dumps(sys.argv[1:], separators=c)); print('ENV=' + json.dumps(os.environ['HOSTILE'], separators=c))",
        hostile,
        ";",
        "&&",
      ],
      env: { HOSTILE: hostile },
    });
    const job = await waitForJob(p, id);
    expect(job.status, JSON.stringify(job.failure)).toBe("SUCCEEDED");
    const log = (await p.api("GET", `/v1/jobs/${id}/logs`)).text;
    expect(log).toContain(`ARGS=${JSON.stringify([hostile, ";", "&&"])}`);
    expect(log).toContain(`ENV=${JSON.stringify(hostile)}`);
    expect(existsSync(canary)).toBe(false);
  });

  it("runs two jobs that together need more GPUs than the cluster has one after the other", async () => {
    const spec = (name: string) => ({
      name,
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "-c", "import time; time.sleep(3)"],
    });
    const first = await submitJob(p, spec("first"));
    const second = await submitJob(p, spec("second"));
    // A waiting job always explains itself; once a pass has seen it not fit, it names capacity.
    const waiting = await waitForJob(p, second, (j) => Boolean(j.waitingReason?.includes("capacity")) || j.status !== "QUEUED");
    const a = await waitForJob(p, first);
    const b = await waitForJob(p, second);
    expect([a.status, b.status]).toEqual(["SUCCEEDED", "SUCCEEDED"]);
    expect(waiting.status).toBe("QUEUED");
    expect(waiting.waitingReason).toMatch(/capacity/);
    expect(new Date(b.attempts[0]!.createdAt).getTime()).toBeGreaterThanOrEqual(new Date(a.endedAt!).getTime());
  });
});

describe("core slice: launch failures", () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform();
  });
  afterAll(async () => {
    await p?.close();
  });

  it("fails the job naming an unreachable node and leaves nothing running on the reachable one", async () => {
    const cluster = await registerCluster(p, {
      nodes: ["n1"],
      extraNodes: [{ name: "ghost", host: "127.0.0.9", port: 2222, user: "ty9", gpus: 2, workRoot: "/var/tmp/none" }],
      hostKeys: { n1: p.infra.nodes[0]!.hostKeyFingerprint, ghost: `SHA256:${"A".repeat(43)}` },
    });
    const id = await submitJob(p, {
      name: "ghost-node",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "-c", "import time; time.sleep(600)"],
    });
    const job = await waitForJob(p, id);
    expect(job.status).toBe("FAILED");
    expect(job.failure!.node).toBe("ghost");
    expect(job.failure!.reason).toMatch(/ghost.*(unreachable|ECONNREFUSED|connect)/i);
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
  });

  it("refuses a node whose host key does not match the pin, and runs nothing anywhere", async () => {
    const cluster = await registerCluster(p, {
      hostKeys: { n1: p.infra.nodes[0]!.hostKeyFingerprint, n2: `SHA256:${"Z".repeat(43)}` },
    });
    const id = await submitJob(p, {
      name: "bad-host-key",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "-c", "import time; time.sleep(600)"],
    });
    const job = await waitForJob(p, id);
    expect(job.status).toBe("FAILED");
    expect(job.failure!.node).toBe("n2");
    expect(job.failure!.reason).toMatch(/host key/i);
    const attemptId = job.attempts[0]!.id;
    expect(processesOfAttempt(attemptId)).toEqual([]);
    // Nothing was started on n1 either: its wrapper never recorded a process group.
    const n1Dir = `${p.infra.nodes[0]!.workRoot}/jobs/${id}/${attemptId}`;
    expect(existsSync(`${n1Dir}/pid`)).toBe(false);
  });
});

describe("core slice: replicas", () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform({ launchers: 2, monitors: 2 });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("two launchers and two monitors run 10 jobs, each launched exactly once", async () => {
    const cluster = await registerCluster(p, { nodes: ["n1", "n2", "n3"], gpus: 4 });
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        submitJob(p, {
          name: `replica-${i}`,
          framework: "pytorch",
          cluster: cluster.name,
          resources: { nodes: 1, gpusPerNode: 1 },
          command: ["python3", "-c", "print('hello from one rank')"],
        }),
      ),
    );
    const jobs = await Promise.all(ids.map((id) => waitForJob(p, id, undefined, 240_000)));
    for (const job of jobs) {
      expect(job.status, JSON.stringify(job.failure)).toBe("SUCCEEDED");
      expect(job.attempts).toHaveLength(1);
      // Exactly one attempt directory exists for the job on the nodes.
      const dirs = p.infra.nodes
        .map((n) => `${n.workRoot}/jobs/${job.id}`)
        .filter((d) => existsSync(d))
        .flatMap((d) => readdirSync(d));
      expect(dirs).toEqual([job.attempts[0]!.id]);
    }
    const final = await Promise.all(ids.map((id) => getJob(p, id)));
    expect(final.every((j) => j.status === "SUCCEEDED")).toBe(true);
  });
});
