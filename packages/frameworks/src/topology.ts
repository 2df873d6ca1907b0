import { gpuTypeMatches, type JobSpec, type NodeSpec, type PortRange } from "@trainyard/common";
import { type FrameworkRequirements, jobRequirements } from "./requirements";

/** One reason a job can never run on a cluster (as opposed to "not now": that is allocation's job). */
export interface TopologyIssue {
  /** Stable id: gpu.type, nodes.count, gpus.per_node, hosts.unique, ports.range, gpu.homogeneous, elastic.bounds, world.size. */
  rule: string;
  node?: string;
  message: string;
}

export interface TopologyCluster {
  nodes: NodeSpec[];
  ports: PortRange;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Checks a job against the cluster's static shape. An empty list means the job fits an idle
 * cluster; a non-empty one means it never will, so the API refuses it with these messages.
 * `requirements` defaults to the framework's own (tests and future frameworks may pass others).
 */
export function validateTopology(
  spec: Pick<JobSpec, "framework" | "resources"> & Partial<Pick<JobSpec, "horovod">>,
  cluster: TopologyCluster,
  requirements: FrameworkRequirements = jobRequirements(spec),
): TopologyIssue[] {
  const issues: TopologyIssue[] = [];
  const { nodes: wanted, gpusPerNode, gpuType } = spec.resources;
  // A job asking for a GPU type sees only the nodes of that type; the rules below count those.
  const nodes = cluster.nodes.filter((n) => gpuTypeMatches(n.gpuType, gpuType));
  if (gpuType !== undefined && nodes.length < cluster.nodes.length) {
    const types = [...new Set(cluster.nodes.map((n) => n.gpuType))].join(", ");
    if (nodes.length === 0) {
      return [{ rule: "gpu.type", message: `job needs gpuType '${gpuType}' but the cluster's nodes are ${types}` }];
    }
  }

  if (wanted > nodes.length) {
    issues.push({
      rule: "nodes.count",
      message: `job needs ${plural(wanted, "node")} but the cluster has ${plural(nodes.length, "node")}${
        nodes.length ? ` (${nodes.map((n) => n.name).join(", ")})` : ""
      }`,
    });
  }

  const bigEnough = nodes.filter((n) => n.gpus >= gpusPerNode);
  // Past nodes.count, only complain when GPUs are a further, separate obstacle.
  if (bigEnough.length < Math.min(wanted, nodes.length)) {
    const largest = nodes.reduce<NodeSpec | undefined>(
      (best, n) => (best === undefined || n.gpus > best.gpus ? n : best),
      undefined,
    );
    const which =
      bigEnough.length === 0
        ? "no node has that many"
        : `only ${bigEnough.map((n) => `${n.name} (${n.gpus})`).join(", ")} ${bigEnough.length === 1 ? "has" : "have"} enough`;
    issues.push({
      rule: "gpus.per_node",
      ...(largest ? { node: largest.name } : {}),
      message: `job needs ${plural(wanted, "node")} with ${plural(gpusPerNode, "GPU")} each; ${which}${
        largest ? `; the largest node is ${largest.name} with ${plural(largest.gpus, "GPU")}` : ""
      }`,
    });
  }

  const endpoints = new Map<string, string>();
  for (const n of nodes) {
    const ep = `${n.user}@${n.host}:${n.port}`;
    const first = endpoints.get(ep);
    if (first !== undefined) {
      issues.push({
        rule: "hosts.unique",
        node: n.name,
        message: `nodes ${first} and ${n.name} are the same machine account ${ep}; each node needs its own user@host:port`,
      });
    } else {
      endpoints.set(ep, n.name);
    }
  }

  const size = cluster.ports.max - cluster.ports.min + 1;
  if (size < requirements.portsPerNode) {
    issues.push({
      rule: "ports.range",
      message: `port range ${cluster.ports.min}-${cluster.ports.max} holds ${plural(Math.max(size, 0), "port")}; a ${spec.framework} job needs a block of ${requirements.portsPerNode}`,
    });
  }

  if (requirements.homogeneousGpus) {
    const byType = new Map<string, string[]>();
    for (const n of bigEnough) byType.set(n.gpuType, [...(byType.get(n.gpuType) ?? []), n.name]);
    const best = Math.max(0, ...[...byType.values()].map((v) => v.length));
    if (byType.size > 1 && best < wanted) {
      issues.push({
        rule: "gpu.homogeneous",
        message: `${spec.framework} needs the same GPU type on all ${plural(wanted, "node")}; the eligible nodes mix ${[...byType]
          .map(([t, ns]) => `${t} (${ns.join(", ")})`)
          .join(", ")}`,
      });
    }
  }

  issues.push(...elasticIssues(spec, nodes, bigEnough.length));
  return issues;
}

/**
 * Elastic bounds (min <= nodes <= max, and a max the cluster can ever offer) and the world size of
 * Horovod Elastic, whose --max-np cannot exceed the slots of the nodes big enough for the job.
 */
function elasticIssues(
  spec: Pick<JobSpec, "framework" | "resources"> & Partial<Pick<JobSpec, "horovod">>,
  nodes: NodeSpec[],
  eligible: number,
): TopologyIssue[] {
  const issues: TopologyIssue[] = [];
  const { nodes: wanted, gpusPerNode, minNodes, maxNodes } = spec.resources;
  if (minNodes !== undefined || maxNodes !== undefined) {
    const min = minNodes ?? wanted;
    const max = maxNodes ?? wanted;
    if (!(min <= wanted && wanted <= max)) {
      issues.push({
        rule: "elastic.bounds",
        message: `elastic bounds must satisfy minNodes <= nodes <= maxNodes; got ${min} <= ${wanted} <= ${max}`,
      });
    } else if (max > nodes.length) {
      issues.push({
        rule: "elastic.bounds",
        message: `maxNodes is ${max} but the cluster has ${plural(nodes.length, "node")}; at most ${nodes.length} can ever join`,
      });
    }
  }
  const he = spec.framework === "horovod" ? spec.horovod?.elastic : undefined;
  if (he) {
    const np = wanted * gpusPerNode;
    if (!(he.minNp <= np && np <= he.maxNp)) {
      issues.push({
        rule: "elastic.bounds",
        message: `Horovod Elastic bounds must satisfy minNp <= nodes x gpusPerNode <= maxNp; got ${he.minNp} <= ${np} <= ${he.maxNp}`,
      });
    }
    const slots = eligible * gpusPerNode;
    if (he.maxNp > slots) {
      issues.push({
        rule: "world.size",
        message: `maxNp is ${he.maxNp} but the cluster offers at most ${plural(slots, "slot")} (${plural(eligible, "node")} with ${gpusPerNode} GPUs each)`,
      });
    }
  }
  return issues;
}
