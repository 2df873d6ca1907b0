/**
 * Real runs of every framework through the API on 2 local SSH nodes (n1 = ty1@127.0.0.2, n2 =
 * ty2@127.0.0.3), each proving that the ranks formed one group: every rank prints the same
 * all-reduced value (the sum of all ranks) and the world size. Horovod/MPI runs also prove the
 * per-attempt inter-node SSH key: authorised on both nodes while the attempt runs, gone from every
 * node (and the head's attempt directory) once it ends.
 *
 * Jobs are tiny: the machine has 2 cores and other tests share it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { JobView } from "@trainyard/common";
import { itWithFramework, processesOfAttempt, REPO_ROOT } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_TRAIN, type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

const example = (path: string) => readFileSync(join(REPO_ROOT, "examples", path), "utf8");
const TF_TRAIN = example("tensorflow-mwms/train.py");
const HVD_TRAIN = example("horovod/train.py");
const MPI_ALLREDUCE = example("mpi/allreduce.py");
const COMMAND_SPAWN = example("command/spawn.py");
const COMMAND_TORCHRUN = JSON.parse(example("command/job-torchrun.json")).command as string[];

const MARKER = "trainyard-attempt=";

/** Framework tests run where up.sh installed the framework; on CI a missing one fails them. */
const itTensorflow = itWithFramework("tensorflow");
const itHorovod = itWithFramework("horovod");

/** authorized_keys of every node account (read as root, independently of the product). */
function attemptKeys(p: Platform): Array<{ node: string; line: string }> {
  const homes = new Map(
    readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((l) => l.split(":"))
      .map((f) => [f[0], f[5]] as const),
  );
  return p.infra.nodes.flatMap((n) => {
    const file = `${homes.get(n.user)}/.ssh/authorized_keys`;
    if (!existsSync(file)) return [];
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes(MARKER))
      .map((line) => ({ node: n.name, line }));
  });
}

function expectNoKeyLeft(p: Platform, job: JobView): void {
  for (const attempt of job.attempts) {
    expect(attemptKeys(p).filter((k) => k.line.endsWith(`${MARKER}${attempt.id}`))).toEqual([]);
    const head = p.infra.nodes.find((n) => n.name === attempt.nodes[0]!.name)!;
    expect(existsSync(`${head.workRoot}/jobs/${job.id}/${attempt.id}/ssh`)).toBe(false);
    expect(processesOfAttempt(attempt.id)).toEqual([]);
  }
}

async function logs(p: Platform, id: string, node: string): Promise<string> {
  const res = await p.api("GET", `/v1/jobs/${id}/logs?node=${node}&maxBytes=1048576`);
  expect(res.status).toBe(200);
  return res.text;
}

const succeeded = (job: JobView) =>
  expect(job.status, `${job.failure?.reason ?? ""}\n${job.attempts[0]?.nodes.map((n) => n.logTail).join("\n")}`).toBe(
    "SUCCEEDED",
  );

interface DryRun {
  framework: string;
  rendezvous: string;
  interNodeSsh: boolean;
  portsPerNode: number;
  elastic?: { min: number; max: number; unit: string };
  text: string;
  nodes: Array<{ launches: boolean; argv: string[]; env: Record<string, string>; files: string[]; provisioned: string[] }>;
}

const launchScript = (p: Platform, job: JobView, node: string) => {
  const n = p.infra.nodes.find((x) => x.name === node)!;
  return readFileSync(`${n.workRoot}/jobs/${job.id}/${job.attempts[0]!.id}/launch.sh`, "utf8");
};

describe("frameworks: real multi-node runs on 2 local SSH nodes", () => {
  let p: Platform;
  let cluster: { id: string; name: string };

  beforeAll(async () => {
    p = await startPlatform();
    cluster = await registerCluster(p);
  });
  afterAll(async () => {
    await p?.close();
  });

  it("dry run shows the full per-node plan of every framework, secrets redacted, generated files listed", async () => {
    const base = { name: "dry", cluster: cluster.name, command: ["python3", "train.py"], env: { API_TOKEN: "dry-secret" } };
    const hvd = await p.api<DryRun>("POST", "/v1/jobs/dry-run", {
      ...base,
      framework: "horovod",
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { launcher: "mpirun" },
    });
    expect(hvd.status, hvd.text).toBe(200);
    expect(hvd.text).not.toContain("dry-secret");
    expect(hvd.text).not.toContain("PRIVATE KEY");
    expect(hvd.body).toMatchObject({ framework: "horovod", rendezvous: "mpirun", interNodeSsh: true });
    const [head, other] = hvd.body.nodes as [DryRun["nodes"][0], DryRun["nodes"][0]];
    expect(head).toMatchObject({ launches: true, provisioned: ["ssh/id_ed25519", "ssh/known_hosts"] });
    expect(head.argv[0]).toBe("mpirun");
    expect(head.files).toEqual(expect.arrayContaining(["env", "launch.sh", "rank.sh", "hostfile", "appfile", "ssh/config"]));
    expect(other).toMatchObject({ launches: false, argv: ["python3", "train.py"], provisioned: [] });
    expect(hvd.body.text).toContain("### ssh/config");

    const tf = await p.api<DryRun>("POST", "/v1/jobs/dry-run", {
      ...base,
      framework: "tensorflow",
      resources: { nodes: 2, gpusPerNode: 1 },
      tensorflow: { chief: true },
    });
    expect(tf.status, tf.text).toBe(200);
    expect(JSON.parse(tf.body.nodes[1]!.env.TF_CONFIG!).task).toEqual({ type: "worker", index: 0 });
    expect(tf.body.portsPerNode).toBe(2);

    const el = await p.api<DryRun>("POST", "/v1/jobs/dry-run", {
      ...base,
      framework: "pytorch",
      resources: { nodes: 2, gpusPerNode: 1, minNodes: 1, maxNodes: 2 },
      pytorch: { rendezvous: "c10d" },
    });
    expect(el.status, el.text).toBe(200);
    expect(el.body.elastic).toEqual({ min: 1, max: 2, unit: "nodes" });
    expect(el.body.nodes[0]!.argv).toContain("--nnodes=1:2");

    const bad = await p.api<{ error: { message: string } }>("POST", "/v1/jobs/dry-run", {
      ...base,
      framework: "horovod",
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { elastic: { minNp: 2, maxNp: 8 } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe("maxNp is 8 but the cluster offers at most 4 slots (2 nodes with 2 GPUs each)");
  });

  it("PyTorch c10d elastic (--nnodes=1:2): 2 nodes x 2 ranks form one group of 4", async () => {
    const id = await submitJob(p, {
      name: "ddp-elastic",
      framework: "pytorch",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2, minNodes: 1, maxNodes: 2 },
      pytorch: { rendezvous: "c10d" },
      command: ["python3", "train.py", "--steps", "5", "--sleep", "0"],
      files: { "train.py": EXAMPLE_TRAIN },
    });
    const job = await waitForJob(p, id, undefined, 240_000);
    succeeded(job);
    expect(launchScript(p, job, "n2")).toContain("torchrun --nnodes=1:2 --nproc_per_node=2 --rdzv_backend=c10d");
    // c10d may order the nodes either way: all four ranks, each with the same sum 0+1+2+3.
    const all = (await logs(p, id, "n1")) + (await logs(p, id, "n2"));
    for (const r of [0, 1, 2, 3]) expect(all).toContain(`rank ${r}/4 allreduce=6`);
  });

  itTensorflow("TensorFlow MultiWorkerMirroredStrategy: 2 workers, one TF_CONFIG cluster, one collective group", async () => {
    const id = await submitJob(p, {
      name: "tf-mwms",
      framework: "tensorflow",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "train.py", "--steps", "5"],
      files: { "train.py": TF_TRAIN },
    });
    const job = await waitForJob(p, id, undefined, 300_000);
    succeeded(job);
    const [n1, n2] = [await logs(p, id, "n1"), await logs(p, id, "n2")];
    expect(n1).toContain("step 5/5 loss");
    expect(n1).toContain("task worker:0 replicas=2 allreduce=1");
    expect(n2).toContain("task worker:1 replicas=2 allreduce=1");
    expect(job.progress).toMatchObject({ step: 5, totalSteps: 5 });
  });

  it("command (its own launcher): each node runs the command once and spawns its ranks into one group of 4", async () => {
    const id = await submitJob(p, {
      name: "command-spawn",
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "spawn.py", "--steps", "5"],
      files: { "spawn.py": COMMAND_SPAWN },
    });
    const job = await waitForJob(p, id, undefined, 240_000);
    succeeded(job);
    const [n1, n2] = [await logs(p, id, "n1"), await logs(p, id, "n2")];
    // The script read the environment alone: node rank, GPUs per node, world size, master endpoint.
    for (const r of [0, 1]) expect(n1).toContain(`rank ${r}/4 allreduce=6`);
    for (const r of [2, 3]) expect(n2).toContain(`rank ${r}/4 allreduce=6`);
    const [h1, h2] = p.infra.nodes;
    expect(n1).toContain(`hostfile: ${h1!.host} slots=2 | ${h2!.host} slots=2`);
    expect(job.progress).toMatchObject({ step: 5, totalSteps: 5 });
    // Launched as is: no framework launcher in front of the job's command.
    expect(launchScript(p, job, "n2")).not.toContain("torchrun");
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
  });

  it("command: torchrun started by the job itself from NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT", async () => {
    const id = await submitJob(p, {
      name: "command-torchrun",
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: COMMAND_TORCHRUN.map((a) => a.replace("--steps 10", "--steps 5")),
      files: { "train.py": EXAMPLE_TRAIN },
    });
    const job = await waitForJob(p, id, undefined, 240_000);
    succeeded(job);
    const all = (await logs(p, id, "n1")) + (await logs(p, id, "n2"));
    for (const r of [0, 1, 2, 3]) expect(all).toContain(`rank ${r}/4 allreduce=6`);
  });

  it("command: a node whose command fails fails the gang, naming the node and exit code", async () => {
    const id = await submitJob(p, {
      name: "command-fail",
      framework: "command",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      // Node 1 fails; node 0 would wait for it for ever (as a rank in a collective would).
      command: ["bash", "-c", 'if [ "$NODE_RANK" = 1 ]; then echo boom >&2; exit 5; fi; sleep 300'],
    });
    const job = await waitForJob(p, id, undefined, 120_000);
    expect(job.status).toBe("FAILED");
    expect(job.failure?.reason).toMatch(/n2/);
    expect(job.failure?.reason).toMatch(/5/);
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
  });

  it("mpirun + mpi4py across both nodes over the attempt's own SSH key, which is gone afterwards", async () => {
    const id = await submitJob(p, {
      name: "mpi-allreduce",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { launcher: "mpirun" },
      // Hold the ranks a moment so the test can see the key authorised while the attempt runs.
      command: ["/bin/sh", "-c", "sleep 3; exec python3 allreduce.py"],
      files: { "allreduce.py": MPI_ALLREDUCE },
    });
    const running = await waitForJob(p, id, (j) => j.status !== "QUEUED" && j.status !== "LAUNCHING", 120_000);
    const attemptId = running.attempts[0]!.id;
    expect(running.status).toBe("RUNNING");
    const during = attemptKeys(p).filter((k) => k.line.endsWith(`${MARKER}${attemptId}`));
    expect(during.map((k) => k.node).sort()).toEqual(["n1", "n2"]);
    expect(during[0]!.line.startsWith("restrict ssh-ed25519 ")).toBe(true);
    const headDir = `${p.infra.nodes[0]!.workRoot}/jobs/${id}/${attemptId}`;
    expect(readFileSync(`${headDir}/ssh/known_hosts`, "utf8").split("\n").filter(Boolean)).toHaveLength(2);
    const job = await waitForJob(p, id, undefined, 240_000);
    succeeded(job);
    expect(job.attempts[0]!.nodes.map((n) => [n.name, n.state, n.exitCode])).toEqual([
      ["n1", "exited", 0],
      ["n2", "exited", 0],
    ]);
    // Every rank's output comes back through mpirun to the head node's log.
    const head = await logs(p, id, "n1");
    for (const r of [0, 1]) expect(head).toMatch(new RegExp(`rank ${r}/4 node 0 user ty1 allreduce=6 bcast_job=${id}`));
    for (const r of [2, 3]) expect(head).toMatch(new RegExp(`rank ${r}/4 node 1 user ty2 allreduce=6 bcast_job=${id}`));
    expect(launchScript(p, job, "n1")).toMatch(
      /mpirun --hostfile \S+\/hostfile --mca plm_rsh_agent 'ssh -F \S+\/ssh\/config' --app/,
    );
    expectNoKeyLeft(p, job);
  });

  it("mpirun: a failing rank fails the job naming its node, rank and exit code; keys revoked", async () => {
    const failing =
      "from mpi4py import MPI\nimport sys\nc = MPI.COMM_WORLD\nc.Barrier()\nsys.exit(7 if c.Get_rank() == 3 else 0)\n";
    const id = await submitJob(p, {
      name: "mpi-fails",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { launcher: "mpirun" },
      command: ["python3", "fail.py"],
      files: { "fail.py": failing },
    });
    const job = await waitForJob(p, id, undefined, 240_000);
    expect(job.status).toBe("FAILED");
    expect(job.failure).toMatchObject({ node: "n2", rank: 3, exitCode: 7 });
    expectNoKeyLeft(p, job);
  });

  itHorovod("horovodrun (Gloo, torch): 2 nodes x 2 ranks form one group of 4", async () => {
    const id = await submitJob(p, {
      name: "hvd-static",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      command: ["python3", "train.py", "--steps", "5"],
      files: { "train.py": HVD_TRAIN },
    });
    const job = await waitForJob(p, id, undefined, 300_000);
    succeeded(job);
    const head = await logs(p, id, "n1");
    for (const r of [0, 1]) expect(head).toContain(`rank ${r}/4 node 0 user ty1 allreduce=6`);
    for (const r of [2, 3]) expect(head).toContain(`rank ${r}/4 node 1 user ty2 allreduce=6`);
    expect(job.progress).toMatchObject({ step: 5, totalSteps: 5 });
    expectNoKeyLeft(p, job);
  });

  itHorovod("horovodrun: cancel stops every rank on both nodes and revokes the key", async () => {
    const id = await submitJob(p, {
      name: "hvd-cancel",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      command: ["python3", "train.py", "--steps", "1000", "--sleep", "0.2"],
      files: { "train.py": HVD_TRAIN },
    });
    await waitForJob(
      p,
      id,
      (j) => (j.progress?.step ?? 0) >= 2 || (j.status !== "RUNNING" && j.status !== "LAUNCHING" && j.status !== "QUEUED"),
      240_000,
    );
    expect((await p.api("POST", `/v1/jobs/${id}/cancel`)).status).toBe(202);
    const job = await waitForJob(p, id, undefined, 120_000);
    expect(job.status).toBe("CANCELLED");
    expectNoKeyLeft(p, job);
  });
});

describe("inter-node keys on a node that is unreachable when the attempt ends", () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform();
  });
  afterAll(async () => {
    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "start", "2"], { stdio: "inherit" });
    await p?.close();
  });

  it("are revoked by the launcher's sweep once the node is back", async () => {
    const cluster = await registerCluster(p);
    const id = await submitJob(p, {
      name: "mpi-node-gone",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 1 },
      horovod: { launcher: "mpirun" },
      command: ["python3", "-c", "import time; print('up', flush=True); time.sleep(600)"],
    });
    const running = await waitForJob(p, id, (j) => j.status !== "QUEUED" && j.status !== "LAUNCHING", 120_000);
    expect(running.status).toBe("RUNNING");
    const attemptId = running.attempts[0]!.id;
    const mine = () => attemptKeys(p).filter((k) => k.line.endsWith(`${MARKER}${attemptId}`));
    expect(mine().map((k) => k.node)).toEqual(["n1", "n2"]);

    // n2's sshd goes away (its processes stay): the monitor loses it, the gang is stopped.
    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "stop", "2"], { stdio: "inherit" });
    const job = await waitForJob(p, id, undefined, 120_000);
    expect(job.status).toBe("FAILED");
    expect(job.failure?.node).toBe("n2");
    // n1 was cleaned at once; n2 could not be reached, so its key is still there.
    expect(mine().map((k) => k.node)).toEqual(["n2"]);

    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "start", "2"], { stdio: "inherit" });
    const deadline = Date.now() + 60_000;
    while (mine().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(mine()).toEqual([]);
    // Its ranks lost their mpirun and ended with it.
    while (processesOfAttempt(attemptId).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(processesOfAttempt(attemptId)).toEqual([]);
  });
});

describe("Horovod Elastic: a node disappears and the job goes on", () => {
  let p: Platform;

  beforeAll(async () => {
    p = await startPlatform();
  });
  afterAll(async () => {
    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "start", "2"], { stdio: "inherit" });
    await p?.close();
  });

  itHorovod("drops the lost node from discovery; the remaining ranks reset and finish", async () => {
    const cluster = await registerCluster(p);
    const id = await submitJob(p, {
      name: "hvd-elastic",
      framework: "horovod",
      cluster: cluster.name,
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { elastic: { minNp: 2, maxNp: 4 } },
      command: ["python3", "train.py", "--elastic", "--steps", "40", "--sleep", "0.3"],
      // A survivor whose ring neighbour is alive (but already resetting) learns of the failure only
      // when its pending receive times out, after HOROVOD_GLOO_TIMEOUT_SECONDS (default 30); the
      // reset waits for it. A shorter timeout keeps the test quick; 20 s is still far above a step.
      env: { HOROVOD_GLOO_TIMEOUT_SECONDS: "20" },
      files: { "train.py": HVD_TRAIN },
    });
    const started = await waitForJob(
      p,
      id,
      (j) => (j.progress?.step ?? 0) >= 3 || ["SUCCEEDED", "FAILED", "CANCELLED"].includes(j.status),
      240_000,
    );
    expect(started.status).toBe("RUNNING");
    const n1 = p.infra.nodes[0]!;
    const hostsFile = `${n1.workRoot}/jobs/${id}/${started.attempts[0]!.id}/hosts.current`;
    expect(readFileSync(hostsFile, "utf8")).toBe("127.0.0.2:2\n127.0.0.3:2\n");

    // n2 dies: its sshd stops and every process of ty2 is killed.
    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "crash", "2"], { stdio: "inherit" });
    const dropped = await waitForJob(p, id, (j) => j.attempts[0]!.nodes[1]!.state === "lost" || j.status !== "RUNNING", 120_000);
    expect(dropped.status).toBe("RUNNING");
    expect(readFileSync(hostsFile, "utf8")).toBe("127.0.0.2:2\n");
    // The node comes back (so the key can be revoked there); the attempt keeps it out.
    execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), "start", "2"], { stdio: "inherit" });

    const job = await waitForJob(p, id, undefined, 300_000);
    succeeded(job);
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0]!.nodes[1]!.state).toBe("lost");
    const head = await logs(p, id, "n1");
    expect(head).toContain("elastic reset, world size now 2");
    // The two ranks left on n1 finish as one group of 2.
    for (const r of [0, 1]) expect(head).toContain(`rank ${r}/2 node 0 user ty1 allreduce=1`);
    expectNoKeyLeft(p, job);
  });
});
