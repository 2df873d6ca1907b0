/**
 * Per-framework failure detection and node-state rules for the monitor (pure).
 *
 * - pytorch: every node runs torchrun; a node's non-zero exit or torchrun's "failed (exitcode: N)
 *   local_rank: R" line (its agent then waits in an exit barrier) fails the gang. Elastic jobs
 *   ignore worker-failure lines (torchrun restarts its workers) and tolerate losing non-head nodes
 *   while at least minNodes remain.
 * - horovod: only the head runs a launcher (horovodrun/mpirun); the other nodes' ranks are its
 *   children over SSH, so those nodes mirror the head's exit. A failure names the first failed rank
 *   from the launcher's summary ("Process name: …", "Exit code: …"). Horovod Elastic tolerates
 *   losing non-head nodes while at least minNp slots remain.
 * - tensorflow, command: one process per node; a node's non-zero exit fails the gang (the others
 *   would hang in their collectives).
 * - all: a lost node (its processes vanished without an exit code, or it could not be reached for
 *   several checks in a row) fails the gang unless the job is elastic and can do without it.
 */
import type { JobSpec, NodeState } from "@trainyard/common";
import { frameworkTraits } from "./plan";
import { torchrunFailedRanks, torchrunRootCause, torchrunWorkerFailure } from "./pytorch-failures";

/** Lines that say a rank failed because a peer went away: a consequence, not the cause. */
const PEER_GONE = /Connection (closed|reset) by peer|peer (closed|disconnected)|Broken pipe/i;

export interface ObservedNode {
  name: string;
  nodeRank: number;
  state: NodeState;
  exitCode?: number;
  logTail?: string;
  /** Why the node could not be probed (the last error), when it could not. */
  error?: string;
}

export interface AttemptFailure {
  reason: string;
  node: string;
  rank?: number;
  exitCode?: number;
  /** The node was lost (not a program failure). */
  lost?: boolean;
}

type Spec = Pick<JobSpec, "framework" | "resources" | "pytorch" | "horovod">;

const dropped = (n: ObservedNode) => n.state === "lost" || (n.state === "exited" && n.exitCode !== 0);

/**
 * Nodes whose ranks the head node's launcher starts (Horovod/MPI) have no wrapper of their own: while
 * they answer probes they count as running, and once the head's launcher exited they take its exit.
 * `reachable[i]` says whether node i answered this check's probe; `previous[i]` is its state after
 * the last check (a node an elastic job has lost stays lost for the rest of the attempt).
 */
export function settleNodeStates<T extends { nodeRank: number; state: NodeState; exitCode?: number }>(
  spec: Spec,
  nodes: T[],
  reachable: boolean[],
  previous: NodeState[] = [],
): T[] {
  const traits = frameworkTraits(spec);
  // An elastic job that let a node go does not take it back within the attempt: it stays lost.
  const sticky = (n: T, i: number): T =>
    traits.elastic && previous[i] === "lost" && n.nodeRank !== 0 ? { ...n, state: "lost" as const } : n;
  if (traits.launchOn !== "head") return nodes.map(sticky);
  const head = nodes.find((n) => n.nodeRank === 0);
  return nodes.map((n, i) => {
    if (previous[i] === "lost" && traits.elastic && n.nodeRank !== 0) return sticky(n, i);
    if (n.nodeRank === 0 || !reachable[i]) return n;
    if (head?.state === "exited") return { ...n, state: "exited" as const, exitCode: head.exitCode ?? 0 };
    const { exitCode: _, ...rest } = n;
    return { ...rest, state: "running" as const } as T;
  });
}

/**
 * Nodes an elastic job has let go (lost, or exited non-zero while the rest went on) and can still do
 * without; empty for fixed-size jobs, or when too few would remain.
 */
export function toleratedNodes(spec: Spec, nodes: ObservedNode[]): string[] {
  const elastic = frameworkTraits(spec).elastic;
  if (!elastic) return [];
  const gone = nodes.filter((n) => dropped(n) && n.nodeRank !== 0);
  if (nodes.some((n) => n.nodeRank === 0 && dropped(n))) return [];
  const remaining = nodes.length - gone.length;
  if (elastic.minNodes !== undefined && remaining < elastic.minNodes) return [];
  if (elastic.minSlots !== undefined && remaining * spec.resources.gpusPerNode < elastic.minSlots) return [];
  return gone.map((n) => n.name);
}

/** The first sign that the gang cannot finish, by the framework's rules; undefined while it can. */
export function findAttemptFailure(spec: Spec, nodes: ObservedNode[]): AttemptFailure | undefined {
  const tolerated = new Set(toleratedNodes(spec, nodes));
  const gpusPerNode = spec.resources.gpusPerNode;
  const elastic = frameworkTraits(spec).elastic !== undefined;
  // PyTorch: every node reports on its own ranks, so when several failed, name the likeliest root
  // cause: a lost node, then a rank killed by a signal, then one that did not merely lose its peers.
  const candidates: Array<{ failure: AttemptFailure; priority: number }> = [];
  for (const node of [...nodes].sort((a, b) => a.nodeRank - b.nodeRank)) {
    if (tolerated.has(node.name)) continue;
    const tail = node.logTail ?? "";
    if (node.state === "lost") {
      const failure = {
        node: node.name,
        lost: true,
        reason: `node ${node.name} lost: ${node.error ?? "its processes vanished without an exit code"}${
          elastic ? " (too few nodes would remain for the elastic job)" : ""
        }`,
      };
      if (spec.framework !== "pytorch") return failure;
      candidates.push({ failure, priority: 0 });
      continue;
    }
    const exitedBadly = node.state === "exited" && node.exitCode !== 0;
    switch (spec.framework) {
      case "pytorch": {
        const worker = elastic ? undefined : torchrunWorkerFailure(tail);
        if (!worker && !exitedBadly) continue;
        // A rank killed by a signal is the likeliest cause; otherwise torchrun's own root cause.
        const cause = torchrunFailedRanks(tail).find((f) => f.exitCode < 0) ?? torchrunRootCause(tail);
        const staticRanks = spec.pytorch?.rendezvous !== "c10d";
        // Global rank: from torchrun's summary, or (static rendezvous only) node rank x ranks per node + local rank.
        const rank = cause.rank ?? (worker && staticRanks ? node.nodeRank * gpusPerNode + worker.localRank : undefined);
        const exitCode = cause.exitCode ?? worker?.exitCode ?? node.exitCode;
        const who = `node ${node.name}${rank !== undefined ? ` rank ${rank}` : worker ? ` local rank ${worker.localRank}` : ""}`;
        candidates.push({
          priority: exitCode !== undefined && exitCode < 0 ? 1 : PEER_GONE.test(tail) ? 3 : 2,
          failure: {
            node: node.name,
            ...(rank !== undefined ? { rank } : {}),
            ...(exitCode !== undefined ? { exitCode } : {}),
            reason: exitedBadly
              ? `${who} exited with code ${exitCode}${node.exitCode !== exitCode ? ` (torchrun exited ${node.exitCode})` : ""}`
              : `${who} failed with exit code ${exitCode}`,
          },
        });
        continue;
      }
      case "horovod": {
        if (node.nodeRank !== 0 || !exitedBadly) continue;
        const launcher = spec.horovod?.launcher ?? "horovodrun";
        const first = launcherFirstFailure(tail);
        // Ranks are placed node by node in rank order (hostfile/appfile order), gpusPerNode each.
        const at =
          first?.rank !== undefined ? nodes.find((n) => n.nodeRank === Math.floor(first.rank! / gpusPerNode)) : undefined;
        const blamed = first?.host ? (nodes.find((n) => hostOf(n) === first.host) ?? at) : at;
        const exitCode = first?.exitCode ?? node.exitCode;
        // No failed rank named: the launcher usually lost a node's SSH session (its daemons died with it).
        const gone = first ? undefined : nodes.find((n) => n.nodeRank !== 0 && (n.state === "unreachable" || n.state === "lost"));
        if (gone) {
          return {
            node: gone.name,
            ...(node.exitCode !== undefined ? { exitCode: node.exitCode } : {}),
            lost: true,
            reason: `node ${gone.name} unreachable: ${gone.error ?? "no answer"} (${launcher} on node ${node.name} exited with code ${node.exitCode})`,
          };
        }
        const target = blamed ?? node;
        const who = `node ${target.name}${first?.rank !== undefined ? ` rank ${first.rank}` : ""}`;
        return {
          node: target.name,
          ...(first?.rank !== undefined ? { rank: first.rank } : {}),
          ...(exitCode !== undefined ? { exitCode } : {}),
          reason: first
            ? `${who} exited with code ${exitCode} (${launcher} exited ${node.exitCode})`
            : `${launcher} on node ${node.name} exited with code ${node.exitCode}`,
        };
      }
      default: {
        if (!exitedBadly) continue;
        return {
          node: node.name,
          rank: node.nodeRank,
          ...(node.exitCode !== undefined ? { exitCode: node.exitCode } : {}),
          reason: `node ${node.name} (task ${node.nodeRank}) exited with code ${node.exitCode}`,
        };
      }
    }
  }
  // Stable sort: among equally likely causes the lowest node rank is named.
  return candidates.sort((a, b) => a.priority - b.priority)[0]?.failure;
}

/** All ranks finished: every node exited 0, except nodes an elastic job let go (never rank 0). */
export function attemptSucceeded(spec: Spec, nodes: ObservedNode[]): boolean {
  const tolerated = new Set(toleratedNodes(spec, nodes));
  const rest = nodes.filter((n) => !tolerated.has(n.name));
  return rest.length > 0 && rest.every((n) => n.state === "exited" && n.exitCode === 0);
}

// The hosts are not part of ObservedNode; horovodrun names failed processes by host only in some
// versions, so callers that care pass nodes with a host (AttemptNode has one).
const hostOf = (n: ObservedNode) => (n as ObservedNode & { host?: string }).host;

/**
 * The first failed process in mpirun's or horovodrun's final summary:
 *   mpirun:     "Process name: [[51234,1],3]" / "Exit code:    7"
 *   horovodrun: "Process name: 3" (or "host[1]") / "Exit code: 7"
 */
export function launcherFirstFailure(logTail: string): { rank?: number; host?: string; exitCode?: number } | undefined {
  const at = logTail.lastIndexOf("Process name:");
  if (at < 0) return undefined;
  const section = logTail.slice(at, at + 400);
  const name = /Process name:\s*(\S+)/.exec(section)?.[1] ?? "";
  const code = /Exit code:\s*(-?\d+)/.exec(section);
  const mpi = /^\[\[\d+,\d+\],(\d+)\]$/.exec(name);
  const plain = /^(\d+)$/.exec(name);
  const hostLocal = /^(.+)\[(\d+)\]$/.exec(name);
  return {
    ...(mpi ? { rank: Number(mpi[1]) } : plain ? { rank: Number(plain[1]) } : {}),
    ...(hostLocal && !mpi ? { host: hostLocal[1] } : {}),
    ...(code ? { exitCode: Number(code[1]) } : {}),
  };
}
