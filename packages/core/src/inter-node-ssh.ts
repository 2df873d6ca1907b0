import { generateKeyPairSync } from "node:crypto";
import type { JobSpec, Logger } from "@trainyard/common";
import type { ClusterDoc, Repos } from "@trainyard/db";
import {
  attemptDir,
  attemptKeyMarker,
  authorizedKeyLine,
  authorizeKeyCommand,
  ed25519OpenSshPrivateKey,
  ed25519PublicKeyLine,
  frameworkTraits,
  INTER_NODE_SSH,
  knownHostsLine,
  type LaunchPlan,
  type ObservedNode,
  renderHostsCurrent,
  revokeKeyCommand,
  toleratedNodes,
  writeHostsCommand,
} from "@trainyard/frameworks";
import type { Types } from "mongoose";
import type { NodeGateway } from "./node-gateway";

export interface AttemptKeyPair {
  /** OpenSSH private key text. Never logged, never stored, never in a queue payload or API response. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… trainyard-attempt=<attemptId>` */
  publicKeyLine: string;
}

/** A fresh ed25519 key pair for one attempt (node's crypto, encoded in OpenSSH's own format). */
export function generateAttemptKeyPair(attemptId: string): AttemptKeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  if (!jwk.d || !jwk.x) throw new Error("ed25519 key export failed");
  const seed = Buffer.from(jwk.d, "base64url");
  const pub = Buffer.from(jwk.x, "base64url");
  const comment = attemptKeyMarker(attemptId);
  return { privateKey: ed25519OpenSshPrivateKey(seed, pub, comment), publicKeyLine: ed25519PublicKeyLine(pub, comment) };
}

/**
 * Before an MPI/Horovod attempt starts: a fresh key pair; its public key authorised on every node of
 * the gang (for this attempt only); on the head node the private key and a known_hosts made of the
 * host keys Trainyard's own connections verified against the pinned fingerprints. The plan already
 * uploaded the ssh config. Throws with the node's name when a node cannot be provisioned.
 */
export async function provisionInterNodeSsh(
  gateway: NodeGateway,
  cluster: ClusterDoc,
  plan: LaunchPlan,
  attemptId: string,
): Promise<void> {
  if (!plan.interNodeSsh) return;
  const head = plan.nodes.find((n) => n.nodeRank === 0);
  if (!head) throw new Error("plan has no rank-0 node");
  const key = generateAttemptKeyPair(attemptId);
  const known = await Promise.all(
    plan.nodes.map(async (n) => {
      const node = cluster.nodes.find((c) => c.name === n.node);
      if (!node) throw new NodeProvisionError(n.node, "node no longer in cluster");
      try {
        return knownHostsLine(node.host, node.port, await gateway.verifiedHostKey(cluster, n.node));
      } catch (err) {
        throw new NodeProvisionError(n.node, `cannot read its verified host key: ${(err as Error).message}`);
      }
    }),
  );
  const line = authorizedKeyLine(key.publicKeyLine, attemptId);
  const results = await Promise.allSettled(
    plan.nodes.map((n) => gateway.command(cluster, n.node, authorizeKeyCommand(line, attemptId))),
  );
  const failed = results.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    const reason = (results[failed] as PromiseRejectedResult).reason as Error;
    throw new NodeProvisionError(plan.nodes[failed]!.node, `cannot authorise the attempt's inter-node key: ${reason.message}`);
  }
  try {
    await gateway.upload(cluster, head.node, [
      { path: `${head.dir}/${INTER_NODE_SSH.privateKey}`, content: key.privateKey, mode: 0o600 },
      { path: `${head.dir}/${INTER_NODE_SSH.knownHosts}`, content: `${known.join("\n")}\n`, mode: 0o644 },
    ]);
  } catch (err) {
    throw new NodeProvisionError(head.node, `cannot write the attempt's inter-node key: ${(err as Error).message}`);
  }
}

export class NodeProvisionError extends Error {
  override name = "NodeProvisionError";
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RevokeResult {
  node: string;
  removed?: number;
  error?: string;
}

/** What revoking needs: the node gateway, the job repository (to record what is left) and a logger. */
export interface RevokeDeps {
  gateway: NodeGateway;
  repos: { jobs: Pick<Repos["jobs"], "setSshKeyNodes"> };
  logger?: Logger;
}

type AttemptKeys = { id: string; nodes: Array<{ name: string; nodeRank: number }>; sshKeyNodes?: string[] };
type JobKeys = { _id: Types.ObjectId; spec: JobSpec; attempts: AttemptKeys[] };

/**
 * When an attempt ends (success, failure, cancel, retry, failed launch): remove its key from every
 * node that may hold it and its ssh directory (private key, config, known_hosts) from the head.
 * Nodes that cannot be reached stay recorded on the attempt (`sshKeyNodes`, job `sshKeysPending`)
 * and the launcher's sweep tries them again until they are clean. Never throws.
 */
export async function revokeInterNodeSsh(
  deps: RevokeDeps,
  cluster: ClusterDoc | null,
  job: JobKeys,
  attempt: AttemptKeys,
): Promise<RevokeResult[]> {
  if (!frameworkTraits(job.spec).interNodeSsh) return [];
  const jobId = job._id.toString();
  const names = attempt.sshKeyNodes ?? attempt.nodes.map((n) => n.name);
  const results = await Promise.all(
    names.map(async (name): Promise<RevokeResult> => {
      const node = cluster?.nodes.find((c) => c.name === name);
      if (!cluster || !node) return { node: name, error: "node no longer in cluster" };
      try {
        const head = attempt.nodes.find((n) => n.name === name)?.nodeRank === 0;
        const headDir = head ? attemptDir(node.workRoot, jobId, attempt.id) : undefined;
        const out = await deps.gateway.command(cluster, name, revokeKeyCommand(attempt.id, headDir));
        return { node: name, removed: Number(/removed (\d+)/.exec(out)?.[1] ?? 0) };
      } catch (err) {
        return { node: name, error: (err as Error).message };
      }
    }),
  );
  // Nodes that left the cluster cannot be reached by Trainyard any more: nothing to retry there.
  const left = results.filter((r) => r.error && r.error !== "node no longer in cluster").map((r) => r.node);
  const index = job.attempts.findIndex((a) => a.id === attempt.id);
  if (index >= 0) {
    const pending = left.length > 0 || job.attempts.some((a, i) => i !== index && (a.sshKeyNodes?.length ?? 0) > 0);
    try {
      await deps.repos.jobs.setSshKeyNodes(job._id, index, left, pending);
    } catch (err) {
      deps.logger?.warn({ jobId, err: (err as Error).message }, "could not record the inter-node key revocation");
    }
  }
  if (left.length)
    deps.logger?.error(
      { jobId, attemptId: attempt.id, failed: results.filter((r) => r.error) },
      "could not revoke the attempt's inter-node SSH key on some nodes; the launcher's sweep will try again",
    );
  return results;
}

/**
 * The launcher's periodic sweep: revoke the keys of ended attempts on nodes that could not be
 * reached when the attempt ended. An attempt still running keeps its key.
 */
export async function sweepPendingSshKeys(deps: RevokeDeps & { repos: Pick<Repos, "jobs" | "clusters"> }): Promise<void> {
  for (const job of await deps.repos.jobs.withPendingSshKeys()) {
    const cluster = await deps.repos.clusters.byId(job.clusterId);
    let current: JobKeys = job;
    for (const attempt of job.attempts) {
      if (!attempt.sshKeyNodes?.length) continue;
      const active = job.currentAttemptId === attempt.id && (job.status === "LAUNCHING" || job.status === "RUNNING");
      if (active) continue;
      await revokeInterNodeSsh(deps, cluster, current, attempt);
      // Later attempts of the same job see this one as done.
      current = {
        ...current,
        attempts: current.attempts.map((a) => (a.id === attempt.id ? { ...a, sshKeyNodes: [] } : a)),
      };
    }
  }
}

/**
 * Horovod Elastic: keep the head node's hosts.current (what its discovery script prints) to the
 * nodes still healthy. Rewritten when the set of nodes the job has let go changed since the last
 * check; a failed write is logged (the discovery lists the node until the next change).
 */
export async function updateHostDiscovery(
  gateway: NodeGateway,
  cluster: ClusterDoc,
  job: { _id: { toString(): string }; spec: JobSpec },
  attempt: { id: string; nodes: Array<ObservedNode & { host: string }> },
  nodes: Array<ObservedNode & { host: string }>,
  logger?: Logger,
): Promise<void> {
  if (!frameworkTraits(job.spec).hostDiscovery) return;
  const before = toleratedNodes(job.spec, attempt.nodes).sort().join(",");
  const gone = new Set(toleratedNodes(job.spec, nodes));
  if ([...gone].sort().join(",") === before) return;
  const head = nodes.find((n) => n.nodeRank === 0);
  const headSpec = cluster.nodes.find((c) => c.name === head?.name);
  if (!head || !headSpec) return;
  const healthy = nodes.filter((n) => !gone.has(n.name)).sort((a, b) => a.nodeRank - b.nodeRank);
  const dir = attemptDir(headSpec.workRoot, job._id.toString(), attempt.id);
  try {
    await gateway.command(
      cluster,
      head.name,
      writeHostsCommand(dir, renderHostsCurrent(healthy, job.spec.resources.gpusPerNode)),
    );
    logger?.warn(
      { jobId: job._id.toString(), attemptId: attempt.id, dropped: [...gone] },
      "elastic job goes on without lost nodes",
    );
  } catch (err) {
    logger?.warn({ jobId: job._id.toString(), err: (err as Error).message }, "could not update the elastic host list");
  }
}
