import { checkPlanInput, hostPort, nodeEnv } from "./node-env";
import { ATTEMPT_FILES, attemptDir, renderEnvFile, renderLaunchScript } from "./node-protocol";
import type { LaunchPlan, NodePlan, PlanInput } from "./plan-types";

/**
 * Ports each node of a `command` job gets: the first port of rank 0's block is the master port;
 * the rest are the job's to use (rendezvous of a launcher of its own, a coordinator, metrics).
 */
export const COMMAND_PORTS_PER_NODE = 4;

/** The hostfile every node of a `command` job gets: one line per node in rank order, `host slots=<GPUs per node>`. */
export const COMMAND_HOSTFILE = "hostfile";

/**
 * Any launcher: the job's command runs once per node, as is, with the documented environment
 * (docs/node-contract.md) and the names launchers and scripts already read — `MASTER_ADDR`,
 * `MASTER_PORT`, `NODE_RANK`, `NNODES`, `GPUS_PER_NODE`, `WORLD_SIZE` (nodes × GPUs per node) and
 * a hostfile — so DeepSpeed, Accelerate, JAX, `torch.distributed` with `env://`, or a script of
 * one's own starts its ranks itself. Trainyard still watches, stops, retries and prices it.
 */
export function planCommand(input: PlanInput): LaunchPlan {
  checkPlanInput(input, "command");
  const { spec, nodes } = input;
  for (const n of nodes) {
    if (n.ports.length < COMMAND_PORTS_PER_NODE)
      throw new Error(`node ${n.name} got ${n.ports.length} ports, a command job needs ${COMMAND_PORTS_PER_NODE}`);
  }
  const master = nodes[0]!;
  const masterPort = master.ports[0]!;
  const gpusPerNode = spec.resources.gpusPerNode;
  const hostfile = nodes.map((n) => `${n.host} slots=${gpusPerNode}\n`).join("");
  const nodePlans = nodes.map((n, rank): NodePlan => {
    const dir = attemptDir(n.workRoot, input.jobId, input.attemptId);
    const workdir = spec.workdir ?? dir;
    const env = nodeEnv(
      input,
      n,
      rank,
      dir,
      { addr: master.host, port: masterPort },
      {
        MASTER_ADDR: master.host,
        MASTER_PORT: String(masterPort),
        MASTER_ENDPOINT: hostPort(master.host, masterPort),
        NODE_RANK: String(rank),
        NNODES: String(nodes.length),
        GPUS_PER_NODE: String(gpusPerNode),
        WORLD_SIZE: String(nodes.length * gpusPerNode),
        TRAINYARD_HOSTFILE: `${dir}/${COMMAND_HOSTFILE}`,
      },
    );
    const argv = [...spec.command];
    const files: Record<string, string> = {
      ...spec.files,
      [COMMAND_HOSTFILE]: hostfile,
      [ATTEMPT_FILES.env]: renderEnvFile(env),
      [ATTEMPT_FILES.launch]: renderLaunchScript({ dir, workdir, argv }),
    };
    return { node: n.name, host: n.host, nodeRank: rank, dir, workdir, launches: true, argv, env, files };
  });
  return {
    framework: "command",
    rendezvous: "env",
    masterAddr: master.host,
    masterPort,
    portsPerNode: COMMAND_PORTS_PER_NODE,
    interNodeSsh: false,
    nodes: nodePlans,
  };
}
