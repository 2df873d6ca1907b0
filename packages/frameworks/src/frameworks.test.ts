import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JobSpecInput, jobSpecSchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { HOROVOD_FILES } from "./horovod";
import { INTER_NODE_SSH } from "./inter-node-ssh";
import { frameworkTraits, planJob } from "./plan";
import { renderPlanText } from "./plan-text";
import type { PlanInput, PlanNode } from "./plan-types";
import { portsPerNode } from "./requirements";

const spec = (over: Partial<JobSpecInput> = {}) =>
  jobSpecSchema.parse({
    name: "demo",
    framework: "pytorch",
    cluster: "lab",
    resources: { nodes: 2, gpusPerNode: 2 },
    command: ["python3", "train.py", "--note", "it's $(not run)"],
    files: { "train.py": "print('hello')\n" },
    env: { LR: "0.1", WANDB_API_KEY: "wandb-secret-value" },
    ...over,
  });

const nodes = (ports: number[]): PlanNode[] => [
  { name: "gpu-a", host: "10.0.0.11", port: 22, user: "train", workRoot: "/srv/trainyard", gpuIndices: [0, 1], ports },
  { name: "gpu-b", host: "10.0.0.12", port: 2222, user: "ml", workRoot: "/data/trainyard", gpuIndices: [2, 3], ports },
];

const input = (s: ReturnType<typeof spec>): PlanInput => ({
  jobId: "job-7f3a",
  attemptId: "job-7f3a-a1",
  attemptNumber: 1,
  spec: s,
  clusterEnv: { PATH: "/opt/trainyard-node/venv/bin:/usr/bin:/bin", HF_TOKEN: "hf-secret-value" },
  nodes: nodes(Array.from({ length: portsPerNode(s) }, (_, i) => 29504 + i)),
});

const golden = (name: string, text: string) => {
  const file = join(import.meta.dirname, "__golden__", name);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, "utf8"));
};

const horovod = (h: JobSpecInput["horovod"] = {}) => spec({ framework: "horovod", horovod: h });
const tensorflow = (t: JobSpecInput["tensorflow"] = {}) => spec({ framework: "tensorflow", tensorflow: t });
const elasticTorch = () =>
  spec({ resources: { nodes: 2, gpusPerNode: 2, minNodes: 1, maxNodes: 3 }, pytorch: { rendezvous: "c10d" } });

describe("planJob dispatch and port blocks", () => {
  it("plans every framework through one function", () => {
    expect(planJob(input(spec())).framework).toBe("pytorch");
    expect(planJob(input(horovod())).framework).toBe("horovod");
    expect(planJob(input(tensorflow())).framework).toBe("tensorflow");
  });

  it("gives each framework its port block", () => {
    expect(portsPerNode(spec())).toBe(4);
    expect(portsPerNode(horovod())).toBe(1);
    expect(portsPerNode(tensorflow())).toBe(2);
    expect(portsPerNode(spec({ framework: "tensorflow", resources: { nodes: 5, gpusPerNode: 1 } }))).toBe(5);
  });

  it("tells the launcher and monitor how each framework behaves", () => {
    expect(frameworkTraits(spec())).toEqual({ launchOn: "all", interNodeSsh: false, hostDiscovery: false });
    expect(frameworkTraits(elasticTorch())).toMatchObject({ elastic: { minNodes: 1 } });
    expect(frameworkTraits(horovod())).toEqual({ launchOn: "head", interNodeSsh: true, hostDiscovery: false });
    expect(frameworkTraits(horovod({ elastic: { minNp: 2, maxNp: 4 } }))).toEqual({
      launchOn: "head",
      interNodeSsh: true,
      elastic: { minSlots: 2 },
      hostDiscovery: true,
    });
  });
});

describe("PyTorch elastic (c10d)", () => {
  it("uses --nnodes=MIN:MAX and lets torchrun restart its workers", () => {
    const plan = planJob(input(elasticTorch()));
    expect(plan.elastic).toEqual({ min: 1, max: 3, unit: "nodes" });
    expect(plan.nodes[1]!.argv.slice(0, 9)).toEqual([
      "torchrun",
      "--nnodes=1:3",
      "--nproc_per_node=2",
      "--rdzv_backend=c10d",
      "--rdzv_endpoint=10.0.0.11:29504",
      "--rdzv_id=job-7f3a-a1",
      "--rdzv_conf=is_host=0",
      "--max_restarts=3",
      "--no_python",
    ]);
    const five = planJob(input(spec({ ...elasticTorch(), pytorch: { rendezvous: "c10d", maxRestarts: 5 } })));
    expect(five.nodes[0]!.argv).toContain("--max_restarts=5");
  });

  const torch = spawnSync("/usr/bin/python3", ["-c", "import torch.distributed.run"], { stdio: "ignore" }).status === 0;
  // On CI a missing torch fails instead of skipping (scripts/infra/up.sh installs python3-torch).
  if (!torch && process.env.CI === "true") throw new Error("CI=true but /usr/bin/python3 cannot import torch");
  it.skipIf(!torch)(
    "produces an elastic command line the installed torchrun parses",
    () => {
      const argv = planJob(input(elasticTorch())).nodes[0]!.argv.slice(1);
      const py =
        "import sys, json\nfrom torch.distributed.run import get_args_parser\nprint(json.dumps(vars(get_args_parser().parse_args(sys.argv[1:])), default=str))";
      const parsed = JSON.parse(execFileSync("/usr/bin/python3", ["-c", py, ...argv], { encoding: "utf8" }));
      expect(parsed).toMatchObject({ nnodes: "1:3", max_restarts: 3, rdzv_backend: "c10d", rdzv_conf: "is_host=1" });
    },
    30_000,
  );

  it("golden: elastic c10d, 2 of 1..3 nodes", () => {
    const text = renderPlanText(planJob(input(elasticTorch())));
    expect(text).not.toContain("secret-value");
    golden("pytorch-elastic.plan.txt", text);
  });
});

describe("Horovod", () => {
  it("horovodrun: hostfile, -np, the ssh shim first on PATH, and a per-node rank dispatch", () => {
    const plan = planJob(input(horovod()));
    expect(plan).toMatchObject({ framework: "horovod", rendezvous: "horovodrun", interNodeSsh: true, portsPerNode: 1 });
    const [head, other] = plan.nodes;
    expect(head!.launches).toBe(true);
    expect(other!.launches).toBe(false);
    expect(head!.argv.slice(0, 7)).toEqual([
      "horovodrun",
      "-np",
      "4",
      "--hostfile",
      "/srv/trainyard/jobs/job-7f3a/job-7f3a-a1/hostfile",
      "--gloo",
      "/bin/sh",
    ]);
    expect(head!.files[HOROVOD_FILES.hostfile]).toBe("10.0.0.11 slots=2\n10.0.0.12 slots=2\n");
    const dispatch = head!.argv[8]!;
    expect(dispatch).toContain("  10.0.0.12) exec /bin/sh /data/trainyard/jobs/job-7f3a/job-7f3a-a1/rank.sh ;;");
    expect(head!.files["launch.sh"]).toContain('PATH=/srv/trainyard/jobs/job-7f3a/job-7f3a-a1/ssh/bin:"$PATH"');
    expect(head!.files[INTER_NODE_SSH.shim]).toContain("-o StrictHostKeyChecking=yes");
    expect(head!.modes).toMatchObject({ [INTER_NODE_SSH.shim]: 0o755 });
    expect(head!.provisioned).toEqual([INTER_NODE_SSH.privateKey, INTER_NODE_SSH.knownHosts]);
    // The other node gets its env, its rank wrapper and the job's files, never a key or launcher.
    expect(Object.keys(other!.files).sort()).toEqual(["env", "rank.sh", "train.py"]);
    expect(other!.files["rank.sh"]).toContain("exec python3 train.py --note 'it'\\''s $(not run)'");
    expect(other!.env.TRAINYARD_NODE_RANK).toBe("1");
  });

  it("ssh config: each node's own user and port, pinned known_hosts, never StrictHostKeyChecking no", () => {
    const cfg = planJob(input(horovod())).nodes[0]!.files[INTER_NODE_SSH.config]!;
    expect(cfg).toContain("Host 10.0.0.12\n  HostName 10.0.0.12\n  User ml\n  Port 2222\n");
    expect(cfg).toContain("  UserKnownHostsFile /srv/trainyard/jobs/job-7f3a/job-7f3a-a1/ssh/known_hosts\n");
    expect(cfg).toContain("  StrictHostKeyChecking yes\n");
    expect(cfg).not.toMatch(/StrictHostKeyChecking\s+no/i);
  });

  it("mpirun: the same hostfile, the attempt's ssh config as rsh agent, an appfile of rank.sh per node", () => {
    const plan = planJob(input(horovod({ launcher: "mpirun" })));
    const head = plan.nodes[0]!;
    expect(head.argv).toEqual([
      "mpirun",
      "--hostfile",
      "/srv/trainyard/jobs/job-7f3a/job-7f3a-a1/hostfile",
      "--mca",
      "plm_rsh_agent",
      "ssh -F /srv/trainyard/jobs/job-7f3a/job-7f3a-a1/ssh/config",
      "--app",
      "/srv/trainyard/jobs/job-7f3a/job-7f3a-a1/appfile",
    ]);
    expect(head.files[HOROVOD_FILES.appfile]).toBe(
      "-np 2 --host 10.0.0.11:2 /bin/sh /srv/trainyard/jobs/job-7f3a/job-7f3a-a1/rank.sh\n" +
        "-np 2 --host 10.0.0.12:2 /bin/sh /data/trainyard/jobs/job-7f3a/job-7f3a-a1/rank.sh\n",
    );
    expect(head.files[INTER_NODE_SSH.shim]).toBeUndefined();
  });

  it("elastic: --min-np/--max-np and a discovery script reading the monitor's host list", () => {
    const plan = planJob(input(horovod({ elastic: { minNp: 2, maxNp: 4 } })));
    expect(plan.elastic).toEqual({ min: 2, max: 4, unit: "processes" });
    const head = plan.nodes[0]!;
    expect(head.argv.slice(0, 9)).toEqual([
      "horovodrun",
      "-np",
      "4",
      "--min-np",
      "2",
      "--max-np",
      "4",
      "--host-discovery-script",
      "/srv/trainyard/jobs/job-7f3a/job-7f3a-a1/discover_hosts.sh",
    ]);
    expect(head.files[HOROVOD_FILES.hosts]).toBe("10.0.0.11:2\n10.0.0.12:2\n");
    expect(head.modes?.[HOROVOD_FILES.discovery]).toBe(0o755);
  });

  it("refuses nodes without SSH port and user", () => {
    const i = input(horovod());
    expect(() => planJob({ ...i, nodes: i.nodes.map(({ user: _, ...n }) => n) })).toThrow(/SSH port and user/);
  });

  for (const [name, h] of [
    ["horovod-horovodrun.plan.txt", {}],
    ["horovod-mpirun.plan.txt", { launcher: "mpirun" as const }],
    ["horovod-elastic.plan.txt", { elastic: { minNp: 2, maxNp: 4 } }],
  ] as const) {
    it(`golden: ${name}`, () => {
      const text = renderPlanText(planJob(input(horovod(h))));
      expect(text).not.toContain("secret-value");
      expect(text).not.toContain("PRIVATE KEY");
      golden(name, text);
    });
  }
});

describe("TensorFlow MultiWorkerMirroredStrategy", () => {
  const tfConfig = (plan: ReturnType<typeof planJob>, i: number) => JSON.parse(plan.nodes[i]!.env.TF_CONFIG!);

  it("one TF_CONFIG cluster everywhere, a task per node, a distinct port per task", () => {
    const plan = planJob(input(tensorflow()));
    const cluster = { worker: ["10.0.0.11:29504", "10.0.0.12:29505"] };
    expect(tfConfig(plan, 0)).toEqual({ cluster, task: { type: "worker", index: 0 } });
    expect(tfConfig(plan, 1)).toEqual({ cluster, task: { type: "worker", index: 1 } });
    expect(plan.nodes.map((n) => n.argv)).toEqual([spec().command, spec().command]);
    expect(plan.nodes.every((n) => n.launches)).toBe(true);
  });

  it("with a chief: rank 0 is chief 0, the others workers", () => {
    const plan = planJob(input(tensorflow({ chief: true })));
    const cluster = { chief: ["10.0.0.11:29504"], worker: ["10.0.0.12:29505"] };
    expect(tfConfig(plan, 0)).toEqual({ cluster, task: { type: "chief", index: 0 } });
    expect(tfConfig(plan, 1)).toEqual({ cluster, task: { type: "worker", index: 0 } });
  });

  it("brackets IPv6 hosts and refuses a port block smaller than the task count", () => {
    const i = input(tensorflow());
    const v6 = planJob({ ...i, nodes: i.nodes.map((n, k) => ({ ...n, host: `fd00::${k + 1}` })) });
    expect(JSON.parse(v6.nodes[0]!.env.TF_CONFIG!).cluster.worker).toEqual(["[fd00::1]:29504", "[fd00::2]:29505"]);
    expect(() => planJob({ ...i, nodes: i.nodes.map((n) => ({ ...n, ports: [29504] })) })).toThrow(/needs 2/);
  });

  for (const [name, t] of [
    ["tensorflow.plan.txt", {}],
    ["tensorflow-chief.plan.txt", { chief: true }],
  ] as const) {
    it(`golden: ${name}`, () => {
      const text = renderPlanText(planJob(input(tensorflow(t))));
      expect(text).not.toContain("secret-value");
      golden(name, text);
    });
  }
});

describe("command (any launcher)", () => {
  const command = () => spec({ framework: "command" });

  it("runs the command as is on every node, with the launcher-neutral environment and a hostfile", () => {
    const plan = planJob(input(command()));
    expect(plan).toMatchObject({ framework: "command", rendezvous: "env", masterAddr: "10.0.0.11", masterPort: 29504 });
    expect(plan.portsPerNode).toBe(portsPerNode(command()));
    expect(plan.nodes.map((n) => [n.launches, n.argv])).toEqual([
      [true, spec().command],
      [true, spec().command],
    ]);
    for (const [rank, n] of plan.nodes.entries()) {
      expect(n.env).toMatchObject({
        NODE_RANK: String(rank),
        NNODES: "2",
        GPUS_PER_NODE: "2",
        WORLD_SIZE: "4",
        MASTER_ADDR: "10.0.0.11",
        MASTER_PORT: "29504",
        MASTER_ENDPOINT: "10.0.0.11:29504",
        TRAINYARD_NODE_RANK: String(rank),
        TRAINYARD_HOSTFILE: `${n.dir}/hostfile`,
      });
      expect(n.files.hostfile).toBe("10.0.0.11 slots=2\n10.0.0.12 slots=2\n");
      // What the user sent is quoted, never expanded by Trainyard's own script.
      expect(n.files["launch.sh"]).toContain(`python3 train.py --note 'it'\\''s $(not run)'`);
    }
  });

  it("refuses elastic bounds and a port block smaller than it needs", () => {
    expect(jobSpecSchema.safeParse({ ...command(), resources: { nodes: 2, gpusPerNode: 1, minNodes: 1 } }).success).toBe(false);
    const i = input(command());
    expect(() => planJob({ ...i, nodes: i.nodes.map((n) => ({ ...n, ports: [29504] })) })).toThrow(/needs 4/);
  });
});

describe("generated scripts are valid sh", () => {
  it("launch.sh, rank.sh, the ssh shim and the discovery script parse with sh -n", () => {
    const dir = mkdtempSync(join(tmpdir(), "ty-sh-"));
    const plans = [
      planJob(input(horovod())),
      planJob(input(horovod({ elastic: { minNp: 2, maxNp: 4 } }))),
      planJob(input(tensorflow())),
      planJob(input(spec({ framework: "command" }))),
    ];
    for (const plan of plans)
      for (const n of plan.nodes)
        for (const [f, content] of Object.entries(n.files)) {
          if (!/(\.sh|ssh\/bin\/ssh)$/.test(f)) continue;
          const file = join(dir, f.replace(/\//g, "_"));
          writeFileSync(file, content);
          expect(spawnSync("/bin/sh", ["-n", file]).status, f).toBe(0);
        }
  });
});
