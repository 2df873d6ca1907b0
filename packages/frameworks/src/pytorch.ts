import { checkPlanInput, nodeEnv } from "./node-env";
import { ATTEMPT_FILES, attemptDir, renderEnvFile, renderLaunchScript } from "./node-protocol";
import type { LaunchPlan, NodePlan, PlanInput } from "./plan-types";

export type { LaunchPlan, NodePlan, PlanInput, PlanNode } from "./plan-types";

/**
 * Ports each node of a PyTorch job gets (the same block on every node). Port 0 is the static
 * master / c10d rendezvous store; the other three are spare for user-side stores and side servers
 * (a second TCPStore, a metrics or profiler endpoint), handed to ranks as TRAINYARD_PORTS, so a
 * job never has to guess a free port on a node it shares.
 */
export const PYTORCH_PORTS_PER_NODE = 4;

/** Restarts torchrun may do by itself in an elastic job (a node leaving or a worker failing). */
export const PYTORCH_ELASTIC_DEFAULT_RESTARTS = 3;

/** torchrun wants IPv6 literals in brackets wherever a port follows or may follow. */
const hostForTorch = (host: string) => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);

/** Elastic bounds of a PyTorch job (resources.minNodes/maxNodes), or undefined for a fixed-size job. */
export function pytorchElastic(spec: Pick<PlanInput["spec"], "resources">): { min: number; max: number } | undefined {
  const { nodes, minNodes, maxNodes } = spec.resources;
  if (minNodes === undefined && maxNodes === undefined) return undefined;
  return { min: minNodes ?? nodes, max: maxNodes ?? nodes };
}

/**
 * The exact torchrun command line and environment for every node of one attempt.
 *
 * Flag spellings are torch 1.13's (Debian python3-torch): underscores (`--nproc_per_node`,
 * `--no_python`); torch 2.x accepts both spellings, so these work there too. `--no_python` runs
 * the job's command as given on each rank (`python3 train.py …`, or any program).
 *
 * Elastic jobs (resources.minNodes/maxNodes, c10d only) get `--nnodes=MIN:MAX` and
 * `--max_restarts` (pytorch.maxRestarts, default 3): when a node leaves, the other agents restart
 * their workers and rendezvous again with the nodes that are left.
 */
export function planPytorch(input: PlanInput): LaunchPlan {
  checkPlanInput(input, "pytorch");
  const { spec, nodes } = input;
  const { nodes: nnodes, gpusPerNode } = spec.resources;
  const master = nodes[0]!;
  const masterPort = master.ports[0]!;

  const elastic = pytorchElastic(spec);
  const rendezvous = spec.pytorch?.rendezvous ?? (elastic ? "c10d" : "static");
  if (elastic && rendezvous !== "c10d") throw new Error("elastic PyTorch jobs need c10d rendezvous");
  const maxRestarts = spec.pytorch?.maxRestarts ?? (elastic ? PYTORCH_ELASTIC_DEFAULT_RESTARTS : 0);
  const masterAddr = master.host;

  const nodePlans = nodes.map((n, rank): NodePlan => {
    const dir = attemptDir(n.workRoot, input.jobId, input.attemptId);
    const workdir = spec.workdir ?? dir;
    const common = [`--nnodes=${elastic ? `${elastic.min}:${elastic.max}` : nnodes}`, `--nproc_per_node=${gpusPerNode}`];
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
    // Trainyard restarts the whole gang from a checkpoint itself; a fixed-size torchrun must not
    // restart alone. Elastic jobs let torchrun restart their workers when membership changes.
    const argv = ["torchrun", ...common, ...rdzv, `--max_restarts=${maxRestarts}`, "--no_python", ...spec.command];
    const env = nodeEnv(input, n, rank, dir, { addr: masterAddr, port: masterPort });
    const files: Record<string, string> = {
      ...spec.files,
      [ATTEMPT_FILES.env]: renderEnvFile(env),
      [ATTEMPT_FILES.launch]: renderLaunchScript({ dir, workdir, argv }),
    };
    return { node: n.name, host: n.host, nodeRank: rank, dir, workdir, launches: true, argv, env, files };
  });

  return {
    framework: "pytorch",
    rendezvous,
    masterAddr,
    masterPort,
    portsPerNode: PYTORCH_PORTS_PER_NODE,
    ...(elastic ? { elastic: { ...elastic, unit: "nodes" as const } } : {}),
    interNodeSsh: false,
    nodes: nodePlans,
  };
}
