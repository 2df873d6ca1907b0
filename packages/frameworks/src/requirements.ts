import type { Framework } from "@trainyard/common";
import { PYTORCH_PORTS_PER_NODE } from "./pytorch";

/** What a framework needs from the cluster, beyond the job's own node and GPU counts. */
export interface FrameworkRequirements {
  /** Size of the port block each node of a job gets (the same block on every node). */
  portsPerNode: number;
  /** All nodes of a job must have the same gpuType (e.g. frameworks that shard by GPU model). */
  homogeneousGpus: boolean;
}

export const FRAMEWORK_REQUIREMENTS: Readonly<Record<Framework, FrameworkRequirements>> = {
  pytorch: { portsPerNode: PYTORCH_PORTS_PER_NODE, homogeneousGpus: false },
};

export function frameworkRequirements(framework: Framework): FrameworkRequirements {
  const r = FRAMEWORK_REQUIREMENTS[framework];
  if (!r) throw new Error(`no requirements known for framework '${framework}'`);
  return r;
}
