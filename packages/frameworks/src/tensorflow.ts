import { checkPlanInput, hostPort, nodeEnv } from "./node-env";
import { ATTEMPT_FILES, attemptDir, renderEnvFile, renderLaunchScript } from "./node-protocol";
import type { LaunchPlan, NodePlan, PlanInput } from "./plan-types";

/**
 * Ports each node of a TensorFlow job gets: one per task. Task k listens on the k-th port of the
 * job's block, so workers never collide even when several "nodes" share one machine (TF's gRPC
 * server binds every interface).
 */
export const tensorflowPortsPerNode = (spec: Pick<PlanInput["spec"], "resources">) => Math.max(1, spec.resources.nodes);

export interface TfTask {
  type: "chief" | "worker";
  index: number;
}

/** Task of the node with this rank: with a chief, rank 0 is chief 0 and rank r is worker r-1. */
export function tensorflowTask(rank: number, chief: boolean): TfTask {
  if (!chief) return { type: "worker", index: rank };
  return rank === 0 ? { type: "chief", index: 0 } : { type: "worker", index: rank - 1 };
}

/**
 * TensorFlow MultiWorkerMirroredStrategy: one process per node running the job's command, each
 * with a TF_CONFIG that has the same `cluster` everywhere (`worker` list, optional `chief`) and its
 * own `task`. No launcher program: the command runs as is.
 */
export function planTensorflow(input: PlanInput): LaunchPlan {
  checkPlanInput(input, "tensorflow");
  const { spec, nodes } = input;
  const chief = spec.tensorflow?.chief ?? false;
  const need = tensorflowPortsPerNode(spec);
  for (const n of nodes) {
    if (n.ports.length < need)
      throw new Error(`node ${n.name} got ${n.ports.length} ports, a TensorFlow job of ${nodes.length} tasks needs ${need}`);
  }
  const address = (rank: number) => hostPort(nodes[rank]!.host, nodes[rank]!.ports[rank]!);
  const cluster: Record<string, string[]> = {};
  if (chief) cluster.chief = [address(0)];
  cluster.worker = nodes
    .map((_, r) => r)
    .filter((r) => !chief || r > 0)
    .map(address);

  const master = nodes[0]!;
  const masterPort = master.ports[0]!;
  const nodePlans = nodes.map((n, rank): NodePlan => {
    const dir = attemptDir(n.workRoot, input.jobId, input.attemptId);
    const workdir = spec.workdir ?? dir;
    const tfConfig = JSON.stringify({ cluster, task: tensorflowTask(rank, chief) });
    const env = nodeEnv(input, n, rank, dir, { addr: master.host, port: masterPort }, { TF_CONFIG: tfConfig });
    const argv = [...spec.command];
    const files: Record<string, string> = {
      ...spec.files,
      [ATTEMPT_FILES.env]: renderEnvFile(env),
      [ATTEMPT_FILES.launch]: renderLaunchScript({ dir, workdir, argv }),
    };
    return { node: n.name, host: n.host, nodeRank: rank, dir, workdir, launches: true, argv, env, files };
  });
  return {
    framework: "tensorflow",
    rendezvous: "tf_config",
    masterAddr: master.host,
    masterPort,
    portsPerNode: need,
    interNodeSsh: false,
    nodes: nodePlans,
  };
}
