import { gpuTypeMatches, type NodeGpuCheck, type NodeSpec, type PortRange, placementBlock } from "@trainyard/common";

export interface NodeAllocation {
  node: string;
  gpuIndices: number[];
  ports: number[];
}
export interface Allocation {
  jobId: string;
  attemptId: string;
  nodes: NodeAllocation[];
}

export interface AllocationRequest {
  jobId: string;
  attemptId: string;
  nodes: number;
  gpusPerNode: number;
  portsPerNode: number;
  /** Only nodes declared with this gpuType (the job's resources.gpuType). */
  gpuType?: string | undefined;
  /** Nodes to use only when nothing else fits (e.g. the node that just failed the last attempt). */
  avoidNodes?: string[];
}

export type AllocationResult = { ok: true; allocation: Allocation } | { ok: false; reason: string };

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Gang allocation: all `req.nodes` nodes or none. Pure: `existing` is every allocation currently
 * held on the cluster; the caller persists the result (and races are settled by the caller's
 * conditional write, not here).
 *
 * Ports are unique cluster-wide, not per node: test "nodes" share one machine through several
 * loopback addresses, and rendezvous stores bind all interfaces, so two jobs on different
 * "nodes" could still collide on one port.
 */
export function allocate(
  req: AllocationRequest,
  cluster: { nodes: Array<NodeSpec & { gpuCheck?: NodeGpuCheck | undefined }>; ports: PortRange },
  existing: readonly Allocation[],
): AllocationResult {
  // Same attempt asked twice (a retried queue job): hand back what it already holds.
  const mine = existing.find((a) => a.jobId === req.jobId && a.attemptId === req.attemptId);
  if (mine) return { ok: true, allocation: mine };

  if (req.nodes > cluster.nodes.length) {
    return { ok: false, reason: `needs ${plural(req.nodes, "node")}; the cluster has ${plural(cluster.nodes.length, "node")}` };
  }

  const used = new Map<string, Set<number>>();
  for (const a of existing) {
    for (const n of a.nodes) {
      const s = used.get(n.node) ?? new Set<number>();
      for (const g of n.gpuIndices) s.add(g);
      used.set(n.node, s);
    }
  }
  const freeGpus = (n: NodeSpec): number[] => {
    const u = used.get(n.name);
    const free: number[] = [];
    for (let g = 0; g < n.gpus; g++) if (!u?.has(g)) free.push(g);
    return free;
  };

  // Only nodes of the asked GPU type; of those, one whose GPUs differ from the declaration
  // (unacknowledged) takes no new job.
  const typed = cluster.nodes.filter((n) => gpuTypeMatches(n.gpuType, req.gpuType));
  const blocked = typed.filter((n) => placementBlock(n));
  const free = typed.filter((n) => !placementBlock(n)).map((n) => ({ node: n, free: freeGpus(n) }));
  const fits = free.filter((f) => f.free.length >= req.gpusPerNode);
  if (fits.length < req.nodes) {
    const detail = [
      ...free.map((f) => `${f.node.name}: ${f.free.length} free`),
      ...blocked.map((n) => `${n.name}: held back (${placementBlock(n)})`),
    ].join(", ");
    return {
      ok: false,
      reason: `needs ${plural(req.nodes, "node")} with ${plural(req.gpusPerNode, `free ${req.gpuType ? `${req.gpuType} ` : ""}GPU`)} each; ${plural(fits.length, "node")} ${
        fits.length === 1 ? "has" : "have"
      } enough free GPUs (${detail})`,
    };
  }
  // Cluster order, with avoided nodes moved to the back: used only when nothing else fits.
  const avoid = new Set(req.avoidNodes ?? []);
  const chosen = [...fits.filter((f) => !avoid.has(f.node.name)), ...fits.filter((f) => avoid.has(f.node.name))].slice(
    0,
    req.nodes,
  );

  const block = findPortBlock(req.portsPerNode, cluster.ports, existing);
  if (block === undefined) {
    return {
      ok: false,
      reason: `no free block of ${plural(req.portsPerNode, "port")} in ${cluster.ports.min}-${cluster.ports.max}`,
    };
  }

  return {
    ok: true,
    allocation: {
      jobId: req.jobId,
      attemptId: req.attemptId,
      nodes: chosen.map((c) => ({ node: c.node.name, gpuIndices: c.free.slice(0, req.gpusPerNode), ports: [...block] })),
    },
  };
}

/** Lowest run of `count` consecutive ports in `range` that no existing allocation holds on any node. */
export function findPortBlock(count: number, range: PortRange, existing: readonly Allocation[]): number[] | undefined {
  if (count <= 0) return [];
  const taken = new Set<number>();
  for (const a of existing) for (const n of a.nodes) for (const p of n.ports) taken.add(p);
  let start = range.min;
  for (let p = range.min; p <= range.max; p++) {
    if (taken.has(p)) {
      start = p + 1;
      continue;
    }
    if (p - start + 1 === count) return Array.from({ length: count }, (_, i) => start + i);
  }
  return undefined;
}
