import { type NcclSettings, RESERVED_FILES } from "@trainyard/common";
import { ATTEMPT_FILES, jobDir } from "./node-protocol";
import type { PlanInput, PlanNode } from "./plan-types";

/** Checks every planner makes before it builds anything. */
export function checkPlanInput(input: PlanInput, framework: string): void {
  const { spec, nodes } = input;
  if (spec.framework !== framework) throw new Error(`plan for ${framework} got a '${spec.framework}' job`);
  const { nodes: nnodes, gpusPerNode } = spec.resources;
  if (nodes.length !== nnodes) throw new Error(`job wants ${nnodes} nodes, plan got ${nodes.length}`);
  for (const n of nodes) {
    if (n.gpuIndices.length !== gpusPerNode)
      throw new Error(`node ${n.name} got ${n.gpuIndices.length} GPUs, job wants ${gpusPerNode}`);
  }
  for (const f of Object.keys(spec.files)) {
    if (RESERVED_FILES.has(f) || RESERVED_FILES.has(f.split("/")[0] ?? ""))
      throw new Error(`inline file '${f}' would overwrite a Trainyard file`);
  }
  if (nodes[0]?.ports[0] === undefined) throw new Error("rank 0 needs at least one port");
}

/**
 * The NCCL_* (and GLOO_SOCKET_IFNAME) variables of a node: the cluster's settings with the node's
 * own on top. Gloo only takes plain interface names, so it follows socketIfname only when that
 * has no '^'/'=' prefix.
 */
export function ncclEnv(cluster: NcclSettings | undefined, node: NcclSettings | undefined): Record<string, string> {
  const s: NcclSettings = { ...cluster, ...node };
  const env: Record<string, string> = {};
  if (s.socketIfname !== undefined) env.NCCL_SOCKET_IFNAME = s.socketIfname;
  const gloo = s.glooSocketIfname ?? (s.socketIfname && !/^[\^=]/.test(s.socketIfname) ? s.socketIfname : undefined);
  if (gloo !== undefined) env.GLOO_SOCKET_IFNAME = gloo;
  if (s.ibHca !== undefined) env.NCCL_IB_HCA = s.ibHca;
  if (s.ibDisable !== undefined) env.NCCL_IB_DISABLE = s.ibDisable ? "1" : "0";
  if (s.ibGidIndex !== undefined) env.NCCL_IB_GID_INDEX = String(s.ibGidIndex);
  if (s.debug !== undefined) env.NCCL_DEBUG = s.debug;
  return env;
}

/**
 * The environment of one node: cluster env, the cluster's and node's NCCL settings, then the job's, then Trainyard's own variables (the
 * names in docs/node-contract.md), then the framework's (`frameworkEnv`, e.g. TF_CONFIG).
 */
export function nodeEnv(
  input: PlanInput,
  n: PlanNode,
  rank: number,
  dir: string,
  master: { addr: string; port: number },
  frameworkEnv: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    ...input.clusterEnv,
    ...ncclEnv(input.clusterNccl, n.nccl),
    ...input.spec.env,
  };
  // Many ranks per node each spawning one OpenMP thread per core oversubscribes the CPU.
  if (env.OMP_NUM_THREADS === undefined) env.OMP_NUM_THREADS = "1";
  // CUDA's default order (fastest first) differs from nvidia-smi's: the GPU indices Trainyard
  // allocates are nvidia-smi's (PCI bus order), so CUDA_VISIBLE_DEVICES must mean the same GPUs.
  if (env.CUDA_DEVICE_ORDER === undefined) env.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
  Object.assign(env, {
    TRAINYARD_JOB_ID: input.jobId,
    TRAINYARD_ATTEMPT: String(input.attemptNumber),
    TRAINYARD_ATTEMPT_ID: input.attemptId,
    TRAINYARD_NODE_RANK: String(rank),
    TRAINYARD_NUM_NODES: String(input.nodes.length),
    TRAINYARD_NODE_IPS: input.nodes.map((x) => x.host).join("\n"),
    TRAINYARD_MASTER_ADDR: master.addr,
    TRAINYARD_MASTER_PORT: String(master.port),
    TRAINYARD_PORTS: n.ports.join(","),
    TRAINYARD_GPUS_PER_NODE: String(input.spec.resources.gpusPerNode),
    TRAINYARD_CHECKPOINT_DIR: input.checkpointDir ?? `${jobDir(n.workRoot, input.jobId)}/checkpoints`,
    TRAINYARD_RESUME_FROM: input.resumeFrom ?? "",
    TRAINYARD_METRICS_FILE: `${dir}/${ATTEMPT_FILES.metrics}`,
    CUDA_VISIBLE_DEVICES: n.gpuIndices.join(","),
    ...frameworkEnv,
  });
  return env;
}

/** `host:port` with IPv6 literals bracketed, as torchrun, TF and most clients want it. */
export const hostPort = (host: string, port: number) =>
  `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
