import { type JobSpec, RESERVED_FILES } from "@trainyard/common";
import { ATTEMPT_FILES, attemptDir, jobDir, renderEnvFile, renderLaunchScript } from "./node-protocol";

/**
 * Ports each node of a PyTorch job gets (the same block on every node). Port 0 is the static
 * master / c10d rendezvous store; the other three are spare for user-side stores and side servers
 * (a second TCPStore, a metrics or profiler endpoint), handed to ranks as TRAINYARD_PORTS, so a
 * job never has to guess a free port on a node it shares.
 */
export const PYTORCH_PORTS_PER_NODE = 4;

export interface PlanNode {
  name: string;
  host: string;
  workRoot: string;
  gpuIndices: number[];
  ports: number[];
}

export interface PlanInput {
  jobId: string;
  attemptId: string;
  attemptNumber: number;
  spec: JobSpec;
  clusterEnv: Record<string, string>;
  /** Rank order: nodes[0] is rank 0 and hosts the master / rendezvous store. */
  nodes: PlanNode[];
  resumeFrom?: string;
  checkpointDir?: string;
}

export interface NodePlan {
  node: string;
  host: string;
  nodeRank: number;
  /** The attempt directory on this node. */
  dir: string;
  workdir: string;
  argv: string[];
  env: Record<string, string>;
  /** Everything to upload into `dir` (path relative to it): env, launch.sh and the job's inline files. */
  files: Record<string, string>;
}

export interface LaunchPlan {
  framework: "pytorch";
  rendezvous: "static" | "c10d";
  masterAddr: string;
  masterPort: number;
  portsPerNode: number;
  nodes: NodePlan[];
}

/** torchrun wants IPv6 literals in brackets wherever a port follows or may follow. */
const hostForTorch = (host: string) => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);

/**
 * The exact torchrun command line and environment for every node of one attempt.
 *
 * Flag spellings are torch 1.13's (Debian python3-torch): underscores (`--nproc_per_node`,
 * `--no_python`); torch 2.x accepts both spellings, so these work there too. `--no_python` runs
 * the job's command as given on each rank (`python3 train.py …`, or any program).
 */
export function planPytorch(input: PlanInput): LaunchPlan {
  const { spec, nodes } = input;
  if (spec.framework !== "pytorch") throw new Error(`planPytorch got a '${spec.framework}' job`);
  const { nodes: nnodes, gpusPerNode } = spec.resources;
  if (nodes.length !== nnodes) throw new Error(`job wants ${nnodes} nodes, plan got ${nodes.length}`);
  for (const n of nodes) {
    if (n.gpuIndices.length !== gpusPerNode)
      throw new Error(`node ${n.name} got ${n.gpuIndices.length} GPUs, job wants ${gpusPerNode}`);
  }
  for (const f of Object.keys(spec.files)) {
    if (RESERVED_FILES.has(f)) throw new Error(`inline file '${f}' would overwrite a Trainyard file`);
  }
  const master = nodes[0];
  const masterPort = master?.ports[0];
  if (!master || masterPort === undefined) throw new Error("rank 0 needs at least one port");

  const rendezvous = spec.pytorch.rendezvous;
  const masterAddr = master.host;
  const nodeIps = nodes.map((n) => n.host).join("\n");

  const nodePlans = nodes.map((n, rank): NodePlan => {
    const dir = attemptDir(n.workRoot, input.jobId, input.attemptId);
    const workdir = spec.workdir ?? dir;
    const common = [`--nnodes=${nnodes}`, `--nproc_per_node=${gpusPerNode}`];
    const rdzv =
      rendezvous === "static"
        ? [`--node_rank=${rank}`, `--master_addr=${hostForTorch(masterAddr)}`, `--master_port=${masterPort}`]
        : [
            "--rdzv_backend=c10d",
            `--rdzv_endpoint=${hostForTorch(masterAddr)}:${masterPort}`,
            `--rdzv_id=${input.attemptId}`,
            // Say who hosts the store instead of letting torch guess from hostnames: the guess
            // fails behind NAT and races when several "nodes" share one machine.
            `--rdzv_conf=is_host=${rank === 0 ? 1 : 0}`,
          ];
    // Trainyard restarts the whole gang from a checkpoint itself; torchrun must not restart alone.
    const argv = ["torchrun", ...common, ...rdzv, "--max_restarts=0", "--no_python", ...spec.command];

    const env: Record<string, string> = { ...input.clusterEnv, ...spec.env };
    // Many ranks per node each spawning one OpenMP thread per core oversubscribes the CPU.
    if (env.OMP_NUM_THREADS === undefined) env.OMP_NUM_THREADS = "1";
    Object.assign(env, {
      TRAINYARD_JOB_ID: input.jobId,
      TRAINYARD_ATTEMPT: String(input.attemptNumber),
      TRAINYARD_ATTEMPT_ID: input.attemptId,
      TRAINYARD_NODE_RANK: String(rank),
      TRAINYARD_NUM_NODES: String(nnodes),
      TRAINYARD_NODE_IPS: nodeIps,
      TRAINYARD_MASTER_ADDR: masterAddr,
      TRAINYARD_MASTER_PORT: String(masterPort),
      TRAINYARD_PORTS: n.ports.join(","),
      TRAINYARD_GPUS_PER_NODE: String(gpusPerNode),
      TRAINYARD_CHECKPOINT_DIR: input.checkpointDir ?? `${jobDir(n.workRoot, input.jobId)}/checkpoints`,
      TRAINYARD_RESUME_FROM: input.resumeFrom ?? "",
      TRAINYARD_METRICS_FILE: `${dir}/${ATTEMPT_FILES.metrics}`,
      CUDA_VISIBLE_DEVICES: n.gpuIndices.join(","),
    });

    const files: Record<string, string> = {
      ...spec.files,
      [ATTEMPT_FILES.env]: renderEnvFile(env),
      [ATTEMPT_FILES.launch]: renderLaunchScript({ dir, workdir, argv }),
    };
    return { node: n.name, host: n.host, nodeRank: rank, dir, workdir, argv, env, files };
  });

  return { framework: "pytorch", rendezvous, masterAddr, masterPort, portsPerNode: PYTORCH_PORTS_PER_NODE, nodes: nodePlans };
}
