import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type JobSpecInput, jobSpecSchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { renderEnvFile } from "./node-protocol";
import { REDACTED, redactEnv, renderPlanText } from "./plan-text";
import { type PlanInput, type PlanNode, planPytorch } from "./pytorch";

const spec = (over: Partial<JobSpecInput> = {}) =>
  jobSpecSchema.parse({
    name: "resnet-demo",
    framework: "pytorch",
    cluster: "lab",
    resources: { nodes: 2, gpusPerNode: 2 },
    command: ["python3", "train.py", "--epochs", "3", "--note", "it's $(not run)"],
    files: { "train.py": "import torch.distributed as dist\nprint('hello')\n" },
    env: { LR: "0.1", WANDB_API_KEY: "wandb-secret-value" },
    ...over,
  });

const nodes: PlanNode[] = [
  { name: "gpu-a", host: "10.0.0.11", workRoot: "/srv/trainyard", gpuIndices: [0, 1], ports: [29504, 29505, 29506, 29507] },
  { name: "gpu-b", host: "10.0.0.12", workRoot: "/data/trainyard/", gpuIndices: [2, 3], ports: [29504, 29505, 29506, 29507] },
];

const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  jobId: "job-7f3a",
  attemptId: "job-7f3a-a2",
  attemptNumber: 2,
  spec: spec(),
  clusterEnv: {
    PATH: "/opt/trainyard-node/venv/bin:/usr/bin:/bin",
    PYTHONPATH: "/opt/trainyard-node/pyfix",
    HF_TOKEN: "hf-secret-value",
  },
  nodes,
  resumeFrom: "/srv/trainyard/jobs/job-7f3a/checkpoints/step-120",
  ...over,
});

describe("planPytorch", () => {
  it("builds static-rendezvous torchrun argv per node", () => {
    const plan = planPytorch(input());
    expect(plan).toMatchObject({
      framework: "pytorch",
      rendezvous: "static",
      masterAddr: "10.0.0.11",
      masterPort: 29504,
      portsPerNode: 4,
    });
    expect(plan.nodes.map((n) => n.argv)).toEqual(
      [0, 1].map((rank) => [
        "torchrun",
        "--nnodes=2",
        "--nproc_per_node=2",
        `--node_rank=${rank}`,
        "--master_addr=10.0.0.11",
        "--master_port=29504",
        "--max_restarts=0",
        "--no_python",
        "python3",
        "train.py",
        "--epochs",
        "3",
        "--note",
        "it's $(not run)",
      ]),
    );
  });

  it("builds c10d torchrun argv without node ranks", () => {
    const plan = planPytorch(input({ spec: spec({ pytorch: { rendezvous: "c10d" } }) }));
    expect(plan.rendezvous).toBe("c10d");
    expect(plan.nodes[1]?.argv.slice(0, 9)).toEqual([
      "torchrun",
      "--nnodes=2",
      "--nproc_per_node=2",
      "--rdzv_backend=c10d",
      "--rdzv_endpoint=10.0.0.11:29504",
      "--rdzv_id=job-7f3a-a2",
      "--rdzv_conf=is_host=0",
      "--max_restarts=0",
      "--no_python",
    ]);
    expect(plan.nodes[0]?.argv).toContain("--rdzv_conf=is_host=1");
    expect(plan.nodes.flatMap((n) => n.argv).some((a) => a.startsWith("--node_rank"))).toBe(false);
  });

  it("brackets IPv6 master addresses for torchrun but not in TRAINYARD_MASTER_ADDR", () => {
    const v6 = nodes.map((n, i) => ({ ...n, host: `fd00::${i + 1}` }));
    const plan = planPytorch(input({ nodes: v6 }));
    expect(plan.nodes[0]?.argv).toContain("--master_addr=[fd00::1]");
    expect(plan.nodes[0]?.env.TRAINYARD_MASTER_ADDR).toBe("fd00::1");
    const c10d = planPytorch(input({ nodes: v6, spec: spec({ pytorch: { rendezvous: "c10d" } }) }));
    expect(c10d.nodes[0]?.argv).toContain("--rdzv_endpoint=[fd00::1]:29504");
  });

  it("lays out attempt dirs per node work root and defaults workdir to it", () => {
    const plan = planPytorch(input());
    expect(plan.nodes.map((n) => [n.dir, n.workdir])).toEqual([
      ["/srv/trainyard/jobs/job-7f3a/job-7f3a-a2", "/srv/trainyard/jobs/job-7f3a/job-7f3a-a2"],
      ["/data/trainyard/jobs/job-7f3a/job-7f3a-a2", "/data/trainyard/jobs/job-7f3a/job-7f3a-a2"],
    ]);
    const withWorkdir = planPytorch(input({ spec: spec({ workdir: "/opt/code" }) }));
    expect(withWorkdir.nodes.map((n) => n.workdir)).toEqual(["/opt/code", "/opt/code"]);
    expect(withWorkdir.nodes[0]?.files["launch.sh"]).toContain("\ncd /opt/code ||");
  });

  it("sets Trainyard's env on every node", () => {
    const plan = planPytorch(input());
    const env = plan.nodes[1]!.env;
    expect(env).toMatchObject({
      TRAINYARD_JOB_ID: "job-7f3a",
      TRAINYARD_ATTEMPT: "2",
      TRAINYARD_ATTEMPT_ID: "job-7f3a-a2",
      TRAINYARD_NODE_RANK: "1",
      TRAINYARD_NUM_NODES: "2",
      TRAINYARD_NODE_IPS: "10.0.0.11\n10.0.0.12",
      TRAINYARD_MASTER_ADDR: "10.0.0.11",
      TRAINYARD_MASTER_PORT: "29504",
      TRAINYARD_PORTS: "29504,29505,29506,29507",
      TRAINYARD_GPUS_PER_NODE: "2",
      TRAINYARD_CHECKPOINT_DIR: "/data/trainyard/jobs/job-7f3a/checkpoints",
      TRAINYARD_RESUME_FROM: "/srv/trainyard/jobs/job-7f3a/checkpoints/step-120",
      TRAINYARD_METRICS_FILE: "/data/trainyard/jobs/job-7f3a/job-7f3a-a2/metrics.jsonl",
      CUDA_VISIBLE_DEVICES: "2,3",
      OMP_NUM_THREADS: "1",
      LR: "0.1",
      PYTHONPATH: "/opt/trainyard-node/pyfix",
    });
    for (const v of Object.values(env)) expect(typeof v).toBe("string");
  });

  it("first attempt: empty TRAINYARD_RESUME_FROM; shared checkpoint dir when given", () => {
    const { resumeFrom: _, ...first } = input({ attemptNumber: 1, checkpointDir: "/shared/ckpt/job-7f3a" });
    const env = planPytorch(first).nodes[0]!.env;
    expect(env.TRAINYARD_RESUME_FROM).toBe("");
    expect(env.TRAINYARD_ATTEMPT).toBe("1");
    expect(env.TRAINYARD_CHECKPOINT_DIR).toBe("/shared/ckpt/job-7f3a");
  });

  it("layers env: cluster, then job, then Trainyard's own", () => {
    const plan = planPytorch(
      input({
        clusterEnv: { A: "cluster", B: "cluster", TRAINYARD_NODE_RANK: "99", CUDA_VISIBLE_DEVICES: "7" },
        spec: spec({ env: { B: "job", OMP_NUM_THREADS: "8" } }),
      }),
    );
    const env = plan.nodes[0]!.env;
    expect(env).toMatchObject({
      A: "cluster",
      B: "job",
      OMP_NUM_THREADS: "8",
      TRAINYARD_NODE_RANK: "0",
      CUDA_VISIBLE_DEVICES: "0,1",
    });
    expect(planPytorch(input({ clusterEnv: { OMP_NUM_THREADS: "4" } })).nodes[0]?.env.OMP_NUM_THREADS).toBe("4");
  });

  it("ships env, launch.sh and the job's inline files", () => {
    const n = planPytorch(input()).nodes[0]!;
    expect(Object.keys(n.files).sort()).toEqual(["env", "launch.sh", "train.py"]);
    expect(n.files.env).toBe(renderEnvFile(n.env));
    expect(n.files["launch.sh"]).toContain("--no_python python3 train.py --epochs 3 --note 'it'\\''s $(not run)'\nty_finish $?");
  });

  it("refuses inconsistent input", () => {
    expect(() => planPytorch(input({ nodes: nodes.slice(0, 1) }))).toThrow(/wants 2 nodes/);
    expect(() => planPytorch(input({ nodes: [nodes[0]!, { ...nodes[1]!, gpuIndices: [0] }] }))).toThrow(/gpu-b got 1 GPUs/);
    expect(() => planPytorch(input({ nodes: [{ ...nodes[0]!, ports: [] }, nodes[1]!] }))).toThrow(/port/);
    expect(() => planPytorch(input({ attemptId: "../x" }))).toThrow(/attempt id/);
    expect(() => planPytorch(input({ jobId: "a/b" }))).toThrow(/job id/);
  });

  // The flag spellings must be the ones the installed torchrun accepts (Debian torch 1.13).
  const torch = spawnSync("/usr/bin/python3", ["-c", "import torch.distributed.run"], { stdio: "ignore" }).status === 0;
  // On CI a missing torch fails instead of skipping (scripts/infra/up.sh installs python3-torch).
  if (!torch && process.env.CI === "true") throw new Error("CI=true but /usr/bin/python3 cannot import torch");
  it.skipIf(!torch)(
    "produces command lines the installed torchrun parses",
    () => {
      for (const rendezvous of ["static", "c10d"] as const) {
        const plan = planPytorch(input({ spec: spec({ pytorch: { rendezvous } }) }));
        const argv = plan.nodes[1]!.argv.slice(1);
        const py =
          "import sys, json\nfrom torch.distributed.run import get_args_parser\nprint(json.dumps(vars(get_args_parser().parse_args(sys.argv[1:])), default=str))";
        const parsed = JSON.parse(execFileSync("/usr/bin/python3", ["-c", py, ...argv], { encoding: "utf8" }));
        expect(parsed).toMatchObject({
          nnodes: "2",
          nproc_per_node: "2",
          max_restarts: 0,
          no_python: true,
          training_script: "python3",
        });
        expect(parsed.training_script_args).toEqual(["train.py", "--epochs", "3", "--note", "it's $(not run)"]);
        if (rendezvous === "static") expect(parsed).toMatchObject({ node_rank: 1, master_addr: "10.0.0.11", master_port: 29504 });
        else
          expect(parsed).toMatchObject({
            rdzv_backend: "c10d",
            rdzv_endpoint: "10.0.0.11:29504",
            rdzv_id: "job-7f3a-a2",
            rdzv_conf: "is_host=0",
          });
      }
    },
    30_000,
  );
});

describe("redactEnv", () => {
  it("redacts secret-looking names and keeps the rest", () => {
    expect(
      redactEnv({
        WANDB_API_KEY: "s",
        HF_TOKEN: "s",
        AWS_SECRET_ACCESS_KEY: "s",
        DB_PASSWORD: "s",
        MYSQL_PASSWD: "s",
        GOOGLE_APPLICATION_CREDENTIALS: "s",
        github_token: "s",
        TOKENIZERS_PARALLELISM: "false",
        CUDA_VISIBLE_DEVICES: "0,1",
        TRAINYARD_ATTEMPT_ID: "a1",
        LR: "0.1",
      }),
    ).toEqual({
      WANDB_API_KEY: REDACTED,
      HF_TOKEN: REDACTED,
      AWS_SECRET_ACCESS_KEY: REDACTED,
      DB_PASSWORD: REDACTED,
      MYSQL_PASSWD: REDACTED,
      GOOGLE_APPLICATION_CREDENTIALS: REDACTED,
      github_token: REDACTED,
      TOKENIZERS_PARALLELISM: "false",
      CUDA_VISIBLE_DEVICES: "0,1",
      TRAINYARD_ATTEMPT_ID: "a1",
      LR: "0.1",
    });
  });

  it("redacts listed keys whatever their name", () => {
    expect(redactEnv({ DSN: "postgres://u:p@h/db", LR: "0.1" }, ["DSN"])).toEqual({ DSN: REDACTED, LR: "0.1" });
  });
});

describe("golden plan text", () => {
  const golden = (name: string, text: string) => {
    const file = join(import.meta.dirname, "__golden__", name);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text);
    expect(text).toBe(readFileSync(file, "utf8"));
  };

  it("static rendezvous, 2 nodes x 2 GPUs", () => {
    const text = renderPlanText(planPytorch(input()));
    expect(text).not.toContain("secret-value");
    golden("pytorch-static.plan.txt", text);
  });

  it("c10d rendezvous, 2 nodes x 2 GPUs, first attempt", () => {
    const { resumeFrom: _, ...first } = input({
      attemptId: "job-7f3a-a1",
      attemptNumber: 1,
      spec: spec({ pytorch: { rendezvous: "c10d" } }),
    });
    const text = renderPlanText(planPytorch(first));
    expect(text).not.toContain("secret-value");
    golden("pytorch-c10d.plan.txt", text);
  });
});
