import type { Framework, JobSpec } from "@trainyard/common";
import { COMMAND_PORTS_PER_NODE } from "./command";
import { HOROVOD_PORTS_PER_NODE } from "./horovod";
import { PYTORCH_PORTS_PER_NODE } from "./pytorch";
import { tensorflowPortsPerNode } from "./tensorflow";

/** What a framework needs from the cluster, beyond the job's own node and GPU counts. */
export interface FrameworkRequirements {
  /** Size of the port block each node of a job gets (the same block on every node). */
  portsPerNode: number;
  /** All nodes of a job must have the same gpuType. */
  homogeneousGpus: boolean;
}

/**
 * Static requirements per framework (`portsPerNode` here is the minimum; `portsPerNode(spec)` is
 * the exact block a given job gets). TensorFlow needs one GPU type on all workers (MWMS builds one
 * collective over identical devices); Horovod alike (its fused allreduce assumes identical GPUs).
 */
export const FRAMEWORK_REQUIREMENTS: Readonly<Record<Framework, FrameworkRequirements>> = {
  pytorch: { portsPerNode: PYTORCH_PORTS_PER_NODE, homogeneousGpus: false },
  horovod: { portsPerNode: HOROVOD_PORTS_PER_NODE, homogeneousGpus: true },
  tensorflow: { portsPerNode: 1, homogeneousGpus: true },
  // The job's own launcher decides; most assume one GPU type, but that is theirs to require.
  command: { portsPerNode: COMMAND_PORTS_PER_NODE, homogeneousGpus: false },
};

export function frameworkRequirements(framework: Framework): FrameworkRequirements {
  const r = FRAMEWORK_REQUIREMENTS[framework];
  if (!r) throw new Error(`no requirements known for framework '${framework}'`);
  return r;
}

/** The port block each node of this job gets (the same block on every node of its gang). */
export function portsPerNode(spec: Pick<JobSpec, "framework" | "resources">): number {
  switch (spec.framework) {
    case "pytorch":
      return PYTORCH_PORTS_PER_NODE;
    case "horovod":
      return HOROVOD_PORTS_PER_NODE;
    case "tensorflow":
      return tensorflowPortsPerNode(spec);
    case "command":
      return COMMAND_PORTS_PER_NODE;
    default:
      throw new Error(`no port requirements known for framework '${String(spec.framework)}'`);
  }
}

/** The job's requirements on a cluster: the framework's, with this job's exact port block. */
export function jobRequirements(spec: Pick<JobSpec, "framework" | "resources">): FrameworkRequirements {
  return { ...frameworkRequirements(spec.framework), portsPerNode: portsPerNode(spec) };
}
