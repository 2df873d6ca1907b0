/**
 * GPU detection on the local SSH nodes, which have no GPU: each node's PATH (the cluster env)
 * starts with a fake `nvidia-smi` that prints what the real one prints for a per-node fixture
 * (the node user's own file), so a test can change what a node "has" between checks.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterView, JobView } from "@trainyard/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";
import { eventually, startHttpReceiver } from "./receivers";

const A100 = (i: number) =>
  `${i}, NVIDIA A100-SXM4-80GB, GPU-${i}a2b3c4d-5e6f-7081-92a3-b4c5d6e7f80${i}, 81920, 535.129.03, 00000000:0${i + 7}:00.0`;
const H100 = (i: number) =>
  `${i}, NVIDIA H100 80GB HBM3, GPU-${i}b1c9f62-8a4e-2f7d-9c1e-5d6a7b8c9d0${i}, 81559, 535.129.03, 00000000:1${i}:00.0`;

/** Answers --query-gpu=… --format=csv,noheader,nounits from $dir/$USER.csv; the plain banner otherwise. */
const FAKE_NVIDIA_SMI = (dir: string) => `#!/bin/sh
fixture="${dir}/$(id -un).csv"
case "$*" in
  *--query-gpu=*) cat "$fixture"; exit 0 ;;
esac
echo "| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |"
`;

interface CheckReport {
  nodes: Array<{
    node: string;
    reachable: boolean;
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
  const fixture = (user: string, rows: string[]) => writeFileSync(join(dir, `${user}.csv`), `${rows.join("\n")}\n`);

  beforeAll(async () => {
    hooks = await startHttpReceiver();
    p = await startPlatform({ env: { ALERT_ALLOWED_HOSTS: "127.0.0.1", ALERT_RETRY_BASE_MS: "300" } });
    const channel = await p.api("POST", "/v1/alert-channels", {
      type: "webhook",
      name: "gpu-ops",
      url: `${hooks.url}/gpu`,
      events: ["node.gpu_mismatch"],
      minSeverity: "warning",
    });
    expect(channel.status, channel.text).toBe(201);
    dir = mkdtempSync("/var/tmp/trainyard-fake-gpu-");
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin/nvidia-smi"), FAKE_NVIDIA_SMI(dir));
    chmodSync(join(dir, "bin/nvidia-smi"), 0o755);
    chmodSync(dir, 0o755);
    fixture("ty1", [A100(0), A100(1)]);
    fixture("ty2", [A100(0)]); // declared 2, one is missing
    const env = { ...p.infra.nodeEnv, PATH: `${dir}/bin:${p.infra.nodeEnv.PATH}` };
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
    const alert = await eventually(() => hooks.on("/gpu")[0], 30_000, "the GPU mismatch alert");
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
    const waiting = await waitForJob(p, id, (j) => Boolean(j.waitingReason), 60_000);
    expect(waiting.status).toBe("QUEUED");
    expect(waiting.waitingReason).toContain("n2: held back, its GPUs differ from the declaration");

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
});
