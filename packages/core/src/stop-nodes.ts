import type { AttemptDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { attemptDir } from "@trainyard/frameworks";
import type { NodeGateway } from "./node-gateway";

export interface NodeStopResult {
  node: string;
  survivors: number[];
  error?: string;
}

/** Stop an attempt's processes on the given nodes in parallel; unreachable nodes report an error. */
export async function stopAttemptNodes(
  deps: { gateway: NodeGateway },
  cluster: ClusterDoc,
  job: JobDoc,
  attempt: AttemptDoc,
  nodeNames: string[],
): Promise<NodeStopResult[]> {
  const jobId = job._id.toString();
  return Promise.all(
    nodeNames.map(async (name) => {
      const node = cluster.nodes.find((n) => n.name === name);
      if (!node) return { node: name, survivors: [], error: "node no longer in cluster" };
      try {
        const out = await deps.gateway.stop(cluster, name, attemptDir(node.workRoot, jobId, attempt.id), attempt.id);
        return { node: name, survivors: out.survivors };
      } catch (err) {
        return { node: name, survivors: [], error: (err as Error).message };
      }
    }),
  );
}
