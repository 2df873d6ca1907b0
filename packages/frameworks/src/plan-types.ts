import type { Framework, JobSpec, NcclSettings } from "@trainyard/common";

/** One node of an attempt's gang, as allocated: rank order is the order of PlanInput.nodes. */
export interface PlanNode {
  name: string;
  host: string;
  /** SSH port and account: needed for the inter-node SSH config of MPI/Horovod jobs. */
  port?: number;
  user?: string;
  workRoot: string;
  gpuIndices: number[];
  ports: number[];
  /** The node's own NCCL settings (override the cluster's one by one). */
  nccl?: NcclSettings | undefined;
}

export interface PlanInput {
  jobId: string;
  attemptId: string;
  attemptNumber: number;
  spec: JobSpec;
  clusterEnv: Record<string, string>;
  /** The cluster's NCCL settings, exported as NCCL_* variables on every node. */
  clusterNccl?: NcclSettings | undefined;
  /** Rank order: nodes[0] is rank 0 and hosts the master / rendezvous store / framework launcher. */
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
  /**
   * True when Trainyard starts launch.sh on this node. False for the non-head nodes of
   * Horovod/MPI jobs: the head's horovodrun/mpirun starts their ranks over SSH.
   */
  launches: boolean;
  /** What launch.sh runs (launching nodes), or what rank.sh runs for each rank (other nodes). */
  argv: string[];
  env: Record<string, string>;
  /** Everything to upload into `dir` (path relative to it): env, launch.sh, generated files and the job's inline files. */
  files: Record<string, string>;
  /** Upload modes that differ from the default (0644; env 0600, launch.sh 0700). */
  modes?: Record<string, number>;
  /** Files written at launch that the plan cannot show (secrets, keys scanned then): listed, never rendered. */
  provisioned?: string[];
}

export interface LaunchPlan {
  framework: Framework;
  /**
   * How the ranks find each other: pytorch "static" | "c10d"; horovod "horovodrun" | "mpirun";
   * tensorflow "tf_config"; command "env" (the job's own launcher reads the environment).
   */
  rendezvous: string;
  masterAddr: string;
  masterPort: number;
  portsPerNode: number;
  /** Elastic bounds: nodes (torchrun --nnodes=MIN:MAX) or processes (horovodrun --min-np/--max-np). */
  elastic?: { min: number; max: number; unit: "nodes" | "processes" };
  /** Trainyard provisions a per-attempt SSH key between the nodes (Horovod/MPI). */
  interNodeSsh: boolean;
  nodes: NodePlan[];
}
