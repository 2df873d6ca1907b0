/**
 * GPU detection on the local SSH nodes, which have no GPU: each node's PATH (the cluster env)
 * starts with a fake `nvidia-smi` that prints what the real one prints for a per-node fixture
 * (the node user's own file), so a test can change what a node "has" between checks.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterView, JobView, TelemetrySampleView } from "@trainyard/common";
import { processesOfAttempt } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_TRAIN, getJob, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";
import { eventually, startHttpReceiver } from "./receivers";

const A100 = (i: number) =>
  `${i}, NVIDIA A100-SXM4-80GB, GPU-${i}a2b3c4d-5e6f-7081-92a3-b4c5d6e7f80${i}, 81920, 535.129.03, 00000000:0${i + 7}:00.0`;
const H100 = (i: number) =>
  `${i}, NVIDIA H100 80GB HBM3, GPU-${i}b1c9f62-8a4e-2f7d-9c1e-5d6a7b8c9d0${i}, 81559, 535.129.03, 00000000:1${i}:00.0`;

/**
 * Answers the telemetry query (utilization.gpu, …) from $dir/$USER.telemetry.csv and the inventory
 * query from $dir/$USER.csv; the plain banner otherwise.
 */
const FAKE_NVIDIA_SMI = (dir: string) => `#!/bin/sh
me=$(id -un)
case "$*" in
  *utilization.gpu*) cat "${dir}/$me.telemetry.csv"; exit 0 ;;
  *--query-gpu=*) cat "${dir}/$me.csv"; exit 0 ;;
esac
echo "| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |"
`;

interface CheckReport {
  nodes: Array<{
    node: string;
    reachable: boolean;
    pinned?: boolean;
    hostKeyMismatch?: boolean;
    gpuInventory?: {
      nvidiaSmi: boolean;
      gpus: Array<{ name: string; memoryMiB?: number }>;
      driverVersion?: string;
      cudaVersion?: string;
    };
    gpuMismatch?: string[];
    placementBlocked?: string;
  }>;
}

describe("GPU detection: cluster check reads nvidia-smi, a mismatch holds the node back until acknowledged", () => {
  let p: Platform;
  let dir: string;
  let cluster: { id: string; name: string };
  let hooks: Awaited<ReturnType<typeof startHttpReceiver>>;
  let env: Record<string, string>;
  const fixture = (user: string, rows: string[]) => writeFileSync(join(dir, `${user}.csv`), `${rows.join("\n")}\n`);
  /** index, util %, memory used/total MiB, °C, W, uncorrectable ECC, pages pending retirement, remapping failed. */
  const telemetry = (user: string, util: number[], ecc = 0) =>
    writeFileSync(
      join(dir, `${user}.telemetry.csv`),
      util
        .map((u, i) => `${i}, ${u}, ${1000 + u * 100}, 81920, ${40 + i}, ${100 + u}.5, ${i === 1 ? ecc : 0}, [N/A], No`)
        .join("\n") + "\n",
    );

  beforeAll(async () => {
    hooks = await startHttpReceiver();
    p = await startPlatform({
      env: { ALERT_ALLOWED_HOSTS: "127.0.0.1", ALERT_RETRY_BASE_MS: "300", GPU_IDLE_SECONDS: "3", GPU_IDLE_UTIL_PCT: "10" },
    });
    for (const [name, events] of [
      ["gpu-ops", ["node.gpu_mismatch"]],
      ["unhealthy", ["node.unhealthy"]],
      ["idle", ["job.gpu_idle"]],
    ] as const) {
      const channel = await p.api("POST", "/v1/alert-channels", {
        type: "webhook",
        name,
        url: `${hooks.url}/${name}`,
        events,
        minSeverity: "info",
      });
      expect(channel.status, channel.text).toBe(201);
    }
    dir = mkdtempSync("/var/tmp/trainyard-fake-gpu-");
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin/nvidia-smi"), FAKE_NVIDIA_SMI(dir));
    chmodSync(join(dir, "bin/nvidia-smi"), 0o755);
    chmodSync(dir, 0o755);
    fixture("ty1", [A100(0), A100(1)]);
    fixture("ty2", [A100(0)]); // declared 2, one is missing
    fixture("ty3", [A100(0), A100(1)]);
    for (const u of ["ty1", "ty2", "ty3"]) telemetry(u, [85, 90]);
    env = { ...p.infra.nodeEnv, PATH: `${dir}/bin:${p.infra.nodeEnv.PATH}` };
    cluster = await registerCluster(p, { gpus: 2, gpuType: "a100-sxm4-80gb", env });
  });
  afterAll(async () => {
    await p?.close();
    await hooks?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = async () => {
    const res = await p.api<CheckReport>("POST", `/v1/clusters/${cluster.id}/check`);
    expect(res.status, res.text).toBe(200);
    return Object.fromEntries(res.body.nodes.map((n) => [n.node, n]));
  };
  const view = async () => (await p.api<ClusterView>("GET", `/v1/clusters/${cluster.id}`)).body;

  it("stores what each node reports and blocks the node whose GPUs differ", async () => {
    const r = await check();
    expect(r.n1).toMatchObject({
      reachable: true,
      gpuMismatch: [],
      gpuInventory: { nvidiaSmi: true, driverVersion: "535.129.03", cudaVersion: "12.2" },
    });
    expect(r.n1!.gpuInventory!.gpus.map((g) => [g.name, g.memoryMiB])).toEqual([
      ["NVIDIA A100-SXM4-80GB", 81920],
      ["NVIDIA A100-SXM4-80GB", 81920],
    ]);
    expect(r.n1!.placementBlocked).toBeUndefined();
    expect(r.n2!.gpuMismatch).toEqual(["declared 2 GPUs, nvidia-smi lists 1"]);
    expect(r.n2!.placementBlocked).toContain("node n2: GPUs differ from the declaration");

    // Stored with the cluster (the placement decision reads it from there).
    const nodes = (await view()).nodes;
    expect(nodes.find((n) => n.name === "n1")?.gpuCheck).toMatchObject({ mismatch: [], driverVersion: "535.129.03" });
    expect(nodes.find((n) => n.name === "n2")?.placementBlocked).toContain("nvidia-smi lists 1");
    const alert = await eventually(() => hooks.on("/gpu-ops")[0], 30_000, "the GPU mismatch alert");
    expect(alert.body).toContain("node.gpu_mismatch");
    expect(alert.body).toContain("nvidia-smi lists 1");
  });

  it("a 2-node job waits on the held-back node, names it, and runs once the mismatch is acknowledged", async () => {
    const id = await submitJob(p, {
      name: "gpu-gated",
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1, gpuType: "A100-SXM4-80GB" },
      command: ["sh", "-c", "echo node $NODE_RANK of $NNODES"],
    });
    // A waiting job always explains itself; once a scheduling pass has tried it, it names the held-back node.
    const waiting = await waitForJob(
      p,
      id,
      (j) => Boolean(j.waitingReason?.includes("held back")) || j.status !== "QUEUED",
      60_000,
    );
    expect(waiting.status).toBe("QUEUED");
    expect(waiting.waitingReason).toContain("n2: held back (node n2: GPUs differ from the declaration");

    // Only the owner's admin may accept it; a node without a mismatch has nothing to accept.
    expect((await p.api("POST", `/v1/clusters/${cluster.id}/nodes/n1/acknowledge-gpus`)).status).toBe(409);
    expect((await p.api("POST", `/v1/clusters/${cluster.id}/nodes/nope/acknowledge-gpus`)).status).toBe(404);
    const ack = await p.api<ClusterView>("POST", `/v1/clusters/${cluster.id}/nodes/n2/acknowledge-gpus`);
    expect(ack.status, ack.text).toBe(200);
    const n2 = ack.body.nodes.find((n) => n.name === "n2")!;
    expect(n2.placementBlocked).toBeUndefined();
    expect(n2.gpuCheck?.acknowledged?.mismatch).toEqual(["declared 2 GPUs, nvidia-smi lists 1"]);

    const done: JobView = await waitForJob(p, id, undefined, 120_000);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.attempts[0]!.nodes.map((n) => n.name).sort()).toEqual(["n1", "n2"]);
  });

  it("a different mismatch found later blocks again; a fixed node is free again", async () => {
    fixture("ty2", [H100(0), H100(1)]);
    const r = await check();
    expect(r.n2!.gpuMismatch).toEqual(["declared gpuType 'a100-sxm4-80gb', nvidia-smi reports 'NVIDIA H100 80GB HBM3'"]);
    expect(r.n2!.placementBlocked).toBeDefined();

    fixture("ty2", [A100(0), A100(1)]);
    const fixed = await check();
    expect(fixed.n2).toMatchObject({ gpuMismatch: [] });
    expect(fixed.n2!.placementBlocked).toBeUndefined();
    expect((await view()).nodes.every((n) => !n.placementBlocked)).toBe(true);
  });

  it("a job asking for a GPU type the cluster lacks is refused at submit", async () => {
    const res = await p.api<{ error: { message: string } }>("POST", "/v1/jobs", {
      name: "wrong-type",
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 1, gpusPerNode: 1, gpuType: "h100" },
      command: ["true"],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("job needs gpuType 'h100' but the cluster's nodes are a100-sxm4-80gb");
  });

  it("a cluster is updated after registration: add a node, re-pin its key after a re-image, remove it; all audited", async () => {
    const n3 = p.infra.nodes[2]!;
    const spec = {
      name: "n3",
      host: n3.host,
      port: n3.port,
      user: n3.user,
      gpus: 2,
      gpuType: "a100-sxm4-80gb",
      workRoot: n3.workRoot,
    };
    const stale = `SHA256:${"A".repeat(43)}`; // the key the node had before its "re-image"
    const added = await p.api<ClusterView>("POST", `/v1/clusters/${cluster.id}/nodes`, { ...spec, hostKey: stale });
    expect(added.status, added.text).toBe(201);
    expect(added.body.nodes.map((n) => n.name)).toEqual(["n1", "n2", "n3"]);
    expect((await p.api("POST", `/v1/clusters/${cluster.id}/nodes`, { ...spec, name: "n3b" })).status).toBe(409); // same machine
    const bad = await p.api<{ error: { message: string } }>("POST", `/v1/clusters/${cluster.id}/nodes`, {
      ...spec,
      name: "x",
      gpus: -1,
    });
    expect(bad.status).toBe(400);

    // The node presents another key: a check reports it and never re-pins; an admin re-pins it.
    let r = await check();
    expect(r.n3).toMatchObject({ reachable: true, hostKeyMismatch: true, pinned: false });
    const repinned = await p.api<ClusterView & { previousFingerprint: string }>(
      "PUT",
      `/v1/clusters/${cluster.id}/nodes/n3/host-key`,
      { fingerprint: n3.hostKeyFingerprint },
    );
    expect(repinned.status, repinned.text).toBe(200);
    expect(repinned.body.previousFingerprint).toBe(stale);
    expect(repinned.body.ssh.hostKeys.n3).toBe(n3.hostKeyFingerprint);
    r = await check();
    expect(r.n3).toMatchObject({ reachable: true, pinned: true, gpuMismatch: [] });
    expect(r.n3!.hostKeyMismatch).toBeUndefined();

    const removed = await p.api<ClusterView>("DELETE", `/v1/clusters/${cluster.id}/nodes/n3`);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body.nodes.map((n) => n.name)).toEqual(["n1", "n2"]);
    expect(removed.body.ssh.hostKeys.n3).toBeUndefined();
    expect((await p.api("DELETE", `/v1/clusters/${cluster.id}/nodes/n3`)).status).toBe(404);

    const audit = await p.api<{ items: Array<{ action: string }> }>("GET", "/v1/audit?limit=50");
    const actions = audit.body.items.map((e) => e.action);
    for (const a of ["cluster.node-add", "cluster.repin", "cluster.node-remove"]) expect(actions).toContain(a);
  });

  describe("on a running job: telemetry, idle GPUs, a faulty node, cordon and drain", () => {
    let c3: { id: string; name: string };
    const ddp = (name: string, steps: number) => ({
      name,
      framework: "pytorch",
      cluster: c3.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "train.py", "--steps", String(steps), "--sleep", "0.25", "--checkpoint-every", "5"],
      files: { "train.py": EXAMPLE_TRAIN },
      retry: { maxRetries: 2, backoffSeconds: 1 },
      checkpoints: { keepLast: 2 },
    });
    const node = async (name: string) =>
      (await p.api<ClusterView>("GET", `/v1/clusters/${c3.id}`)).body.nodes.find((n) => n.name === name)!;

    beforeAll(async () => {
      for (const u of ["ty1", "ty2", "ty3"]) fixture(u, [A100(0), A100(1)]);
      c3 = await registerCluster(p, { nodes: ["n1", "n2", "n3"], gpus: 2, gpuType: "a100-sxm4-80gb", env });
    });

    it("samples every GPU of the attempt each check: API and Prometheus; one idle alert; a GPU fault moves the job off the node", async () => {
      const id = await submitJob(p, ddp("ddp-telemetry", 60));
      const running = await waitForJob(p, id, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 3, 120_000);
      expect(running.attempts[0]!.nodes.map((n) => n.name)).toEqual(["n1", "n2"]);

      const metrics = await eventually(
        async () => {
          const m = await p.api<{ items: TelemetrySampleView[]; latest: Record<string, TelemetrySampleView> }>(
            "GET",
            `/v1/jobs/${id}/metrics`,
          );
          return m.body.latest?.n1 && m.body.latest.n2 && m.body;
        },
        30_000,
        "samples of both nodes",
      );
      expect(metrics.latest.n1!.gpus).toEqual([
        { index: 0, utilPct: 85, memUsedMiB: 9500, memTotalMiB: 81920, tempC: 40, powerW: 185.5 },
        { index: 1, utilPct: 90, memUsedMiB: 10000, memTotalMiB: 81920, tempC: 41, powerW: 190.5 },
      ]);
      expect(metrics.latest.n2!.proc?.rssMiB).toBeGreaterThan(10); // python + torch ranks
      expect(metrics.items.every((s) => s.attemptId === running.attempts[0]!.id)).toBe(true);

      const scrape = async () => (await Promise.all(p.metricsUrls.monitor!.map(async (u) => (await fetch(u)).text()))).join("\n");
      const series = await eventually(
        async () => {
          const text = await scrape();
          return text.includes(`job_id="${id}"`) && text;
        },
        30_000,
        "GPU series of the job",
      );
      expect(series).toMatch(
        new RegExp(`trainyard_gpu_utilization_percent\\{[^}]*job_id="${id}"[^}]*node="n1"[^}]*gpu="1"[^}]*\\} 90`),
      );
      expect(series).toMatch(
        new RegExp(`trainyard_gpu_power_watts\\{[^}]*job_id="${id}"[^}]*node="n2"[^}]*gpu="0"[^}]*\\} 185.5`),
      );
      expect(series).toMatch(new RegExp(`trainyard_job_process_memory_bytes\\{[^}]*job_id="${id}"[^}]*node="n1"[^}]*\\} \\d+`));

      // Every GPU of the attempt below 10 % for 3 s: exactly one alert for this attempt.
      telemetry("ty1", [2, 3]);
      telemetry("ty2", [1, 0]);
      const idle = await eventually(() => hooks.on("/idle")[0], 30_000, "the idle-GPU alert");
      expect(idle.body).toContain("job.gpu_idle");
      expect(idle.body).toContain("below 10% utilisation for 3 s (highest 3%)");
      await new Promise((r) => setTimeout(r, 4000));
      expect(hooks.on("/idle")).toHaveLength(1);
      expect((await getJob(p, id)).attempts[0]!.gpuIdleAlertedAt).toBeDefined();

      // GPU 1 of n2 reports uncorrectable ECC errors: n2 unhealthy, the gang restarts on n1+n3 from its checkpoint.
      telemetry("ty2", [50, 50], 2);
      const done = await waitForJob(p, id, undefined, 240_000);
      expect(done.status, JSON.stringify(done.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
      expect(done.attempts[0]!.reason).toContain("node n2 is unhealthy: GPU 1: 2 uncorrectable ECC errors");
      expect(done.attempts[0]!.failedNode).toBe("n2");
      expect(done.attempts[1]!.nodes.map((n) => n.name)).toEqual(["n1", "n3"]);
      expect((await p.api("GET", `/v1/jobs/${id}/logs?node=n1`)).text).toMatch(/resumed from .*step-\d+ at step [1-9]\d*/);
      const n2 = await node("n2");
      expect(n2.health).toMatchObject({ state: "unhealthy", source: "monitor", reasons: ["GPU 1: 2 uncorrectable ECC errors"] });
      expect(n2.placementBlocked).toContain("node n2 is unhealthy");
      const alert = await eventually(() => hooks.on("/unhealthy")[0], 30_000, "the unhealthy-node alert");
      expect(alert.body).toContain("GPU 1: 2 uncorrectable ECC errors");

      // Samples stay after the job ends.
      const after = await p.api<{ items: TelemetrySampleView[] }>("GET", `/v1/jobs/${id}/metrics?node=n3`);
      expect(after.body.items.length).toBeGreaterThan(0);
      expect(after.body.items.every((s) => s.node === "n3" && s.attemptId === done.attempts[1]!.id)).toBe(true);
    });

    it("cordon keeps new jobs off a node, drain also moves its running job, uncordon puts both back", async () => {
      telemetry("ty2", [80, 80]);
      // n2 is still unhealthy from the test above: a 2-node job fits only n1+n3.
      const blocked = await p.api<ClusterView>("POST", `/v1/clusters/${c3.id}/nodes/n3/cordon`, { reason: "disk swap" });
      expect(blocked.status, blocked.text).toBe(200);
      expect(blocked.body.nodes.find((n) => n.name === "n3")!.placementBlocked).toMatch(/node n3 is cordoned by .*: disk swap/);
      const id = await submitJob(p, ddp("ddp-drain", 80));
      const waiting = await waitForJob(
        p,
        id,
        (j) => Boolean(j.waitingReason?.includes("held back")) || j.status !== "QUEUED",
        60_000,
      );
      expect(waiting.waitingReason).toContain("n2: held back");
      expect(waiting.waitingReason).toContain("n3: held back");

      // Uncordon n2 (clears its fault) and n3: the job runs on n1+n2.
      for (const n of ["n2", "n3"]) expect((await p.api("POST", `/v1/clusters/${c3.id}/nodes/${n}/uncordon`)).status).toBe(200);
      expect((await node("n2")).health).toBeUndefined();
      const running = await waitForJob(p, id, (j) => j.status === "RUNNING" && (j.progress?.step ?? 0) >= 6, 120_000);
      expect(running.attempts.at(-1)!.nodes.map((n) => n.name)).toEqual(["n1", "n2"]);

      // A node a job holds cannot be removed: drain it first.
      const held = await p.api<{ error: { message: string } }>("DELETE", `/v1/clusters/${c3.id}/nodes/n2`);
      expect(held.status).toBe(409);
      expect(held.body.error.message).toContain("node 'n2' is in use by 1 job(s); drain it");

      // Drain n2: the job restarts on n1+n3 from its checkpoint; n2's processes are gone.
      const drained = await p.api<ClusterView & { movedJobs: string[] }>("POST", `/v1/clusters/${c3.id}/nodes/n2/drain`, {});
      expect(drained.status, drained.text).toBe(200);
      expect(drained.body.movedJobs).toEqual([id]);
      const done = await waitForJob(p, id, undefined, 240_000);
      expect(done.status, JSON.stringify(done.attempts.map((a) => a.reason))).toBe("SUCCEEDED");
      const [first, second] = [done.attempts.at(-2)!, done.attempts.at(-1)!];
      expect(first.reason).toMatch(/node n2 drained by .*restarting elsewhere from the latest checkpoint/);
      expect(processesOfAttempt(first.id)).toEqual([]);
      expect(second.nodes.map((n) => n.name)).toEqual(["n1", "n3"]);
      expect((await p.api("GET", `/v1/jobs/${id}/logs?node=n1`)).text).toMatch(/resumed from .*step-\d+ at step [1-9]\d*/);

      const audit = await p.api<{ items: Array<{ action: string; target: string }> }>("GET", "/v1/audit?limit=50");
      const actions = audit.body.items.map((e) => e.action);
      for (const a of ["cluster.cordon", "cluster.uncordon", "cluster.drain"]) expect(actions).toContain(a);
      expect((await p.api("POST", `/v1/clusters/${c3.id}/nodes/n2/uncordon`)).status).toBe(200);
    });
  });
});
