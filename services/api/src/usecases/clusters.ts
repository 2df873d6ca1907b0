import {
  type addNodeSchema,
  badRequest,
  type ClusterView,
  type clusterSharingSchema,
  type clusterSpecSchema,
  type hostKeySchema,
  type NodeGpuCheck,
  placementBlock,
  type QueuePayload,
} from "@trainyard/common";
import { type NodeCheck, requestSchedulingPass } from "@trainyard/core";
import { type ClusterDoc, clusterView } from "@trainyard/db";
import { gpuFaults, inventoryMismatch } from "@trainyard/frameworks";
import { z } from "zod";
import type { ApiDeps } from "../context";

/**
 * Register a cluster: the SSH key is sealed into the credential store first, the cluster then
 * refers to it by id. Neither the key nor the passphrase is ever returned or logged.
 */
export async function registerCluster(
  deps: ApiDeps,
  team: string,
  spec: z.output<typeof clusterSpecSchema>,
): Promise<ClusterView> {
  await assertTeamsExist(deps, spec.sharedWith);
  spec.sharedWith = [...new Set(spec.sharedWith.filter((t) => t !== team))].sort();
  const { privateKey, passphrase } = spec.ssh;
  const credentialId = await deps.repos.credentials.createSsh(team, {
    privateKey,
    ...(passphrase !== undefined ? { passphrase } : {}),
  });
  try {
    const doc = await deps.repos.clusters.create(team, spec, credentialId);
    deps.logger.info({ cluster: doc.name, clusterId: doc._id.toString(), nodes: doc.nodes.length }, "cluster registered");
    return clusterView(doc);
  } catch (err) {
    // No orphaned secrets: a refused cluster (e.g. a duplicate name) takes its credential with it.
    await deps.repos.credentials.delete(credentialId).catch(() => undefined);
    throw err;
  }
}

export async function listClusters(deps: ApiDeps, team: string): Promise<ClusterView[]> {
  return (await deps.repos.clusters.list(team)).map((c) => clusterView(c, team));
}

export async function getCluster(deps: ApiDeps, team: string, idOrName: string): Promise<ClusterView> {
  return clusterView(await deps.repos.clusters.getForTeam(team, idOrName), team);
}

/** Replace whom an owned cluster is shared with; every named team must exist. */
export async function shareCluster(
  deps: ApiDeps,
  team: string,
  idOrName: string,
  { teams }: z.output<typeof clusterSharingSchema>,
): Promise<ClusterView> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  await assertTeamsExist(deps, teams);
  const wanted = [...new Set(teams.filter((t) => t !== team))].sort();
  return clusterView(await deps.repos.clusters.setSharing(cluster._id, wanted), team);
}

async function assertTeamsExist(deps: ApiDeps, teams: string[]): Promise<void> {
  for (const t of new Set(teams)) {
    if (!(await deps.repos.teams.byName(t))) throw badRequest(`sharedWith: no team named '${t}'`);
  }
}

export interface NodeCheckReport extends NodeCheck {
  /** How the GPUs nvidia-smi reports differ from the declared gpus/gpuType (empty: they match). */
  gpuMismatch?: string[];
  /** GPU faults found (uncorrectable ECC, pending page retirement, failed row remapping, nvidia-smi errors): the node is unhealthy. */
  gpuFaults?: string[];
  /** Why the node gets no new placement (unhealthy, cordoned, or an unacknowledged GPU mismatch). */
  placementBlocked?: string;
  /** The node presented a key other than the pinned one (it is never re-pinned by a check). */
  hostKeyMismatch?: true;
  /** This check pinned the node's key (trust on first use). */
  pinnedNow?: true;
}

/**
 * Connect to every node of a cluster. With `ssh.trustOnFirstUse`, a reachable node without a
 * pinned key gets the key it presented pinned; a node whose key differs from its pin is reported
 * (and alerted), never re-pinned.
 */
export async function checkCluster(deps: ApiDeps, team: string, idOrName: string): Promise<{ nodes: NodeCheckReport[] }> {
  // Only the owner pins keys: a team the cluster is shared with may use it, not change it.
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const pins = cluster.ssh.hostKeys ?? {};
  const results: NodeCheckReport[] = await Promise.all(
    cluster.nodes.map(async (n): Promise<NodeCheckReport> => {
      try {
        return await deps.gateway.check(cluster, n.name);
      } catch (err) {
        return { node: n.name, reachable: false, pinned: Boolean(pins[n.name]), error: (err as Error).message };
      }
    }),
  );

  const toPin: Record<string, string> = {};
  for (const r of results) {
    const pin = pins[r.node];
    if (pin && r.hostKeyFingerprint && r.hostKeyFingerprint !== pin) {
      r.hostKeyMismatch = true;
      r.pinned = false;
    } else if (!pin && cluster.ssh.trustOnFirstUse && r.reachable && r.hostKeyFingerprint) {
      toPin[r.node] = r.hostKeyFingerprint;
    }
  }
  if (Object.keys(toPin).length) {
    // pinHostKeys never replaces a pin set meanwhile (e.g. by a concurrent check); it returns what it pinned.
    const pinned = await deps.repos.clusters.pinHostKeys(cluster._id, toPin);
    for (const r of results) {
      if (pinned[r.node]) {
        r.pinned = true;
        r.pinnedNow = true;
      }
    }
    deps.logger.info({ cluster: cluster.name, pinned }, "host keys pinned on first use");
  }

  await recordGpuChecks(deps, cluster, results);

  const mismatched = results.filter((r) => r.hostKeyMismatch);
  for (const r of mismatched) {
    deps.logger.warn(
      { cluster: cluster.name, node: r.node, presented: r.hostKeyFingerprint, pinned: pins[r.node] },
      "host key mismatch",
    );
    await deps.bus
      .send("alerts", {
        type: "node.hostkey_mismatch",
        severity: "critical",
        clusterId: cluster._id.toString(),
        message: `cluster ${cluster.name}, node ${r.node}: host key changed (pinned ${pins[r.node]}, presented ${r.hostKeyFingerprint})`,
        at: new Date().toISOString(),
      })
      .catch((err: Error) => deps.logger.warn({ err: err.message }, "could not queue host-key alert"));
  }
  return { nodes: results };
}

/**
 * Keep what each reachable node's nvidia-smi reported, compared with its declaration. A node whose
 * GPUs differ is held back from placement until an admin acknowledges that exact mismatch.
 */
async function recordGpuChecks(deps: ApiDeps, cluster: ClusterDoc, results: NodeCheckReport[]): Promise<void> {
  const checkedAt = new Date();
  const checks: Record<string, { gpuCheck: Omit<NodeGpuCheck, "acknowledged">; faults: string[] }> = {};
  for (const r of results) {
    const inv = r.gpuInventory;
    const node = cluster.nodes.find((n) => n.name === r.node);
    if (!inv || !node) continue;
    r.gpuMismatch = inventoryMismatch(node, inv);
    r.gpuFaults = gpuFaults(inv);
    checks[r.node] = { gpuCheck: { checkedAt: checkedAt.toISOString(), ...inv, mismatch: r.gpuMismatch }, faults: r.gpuFaults };
  }
  if (!Object.keys(checks).length) return;
  const before = new Map(cluster.nodes.map((n) => [n.name, placementBlock(n)]));
  const updated = await deps.repos.clusters.recordChecks(cluster._id, checks, checkedAt);
  for (const r of results) {
    const blocked = placementBlock(updated.nodes.find((n) => n.name === r.node) ?? { name: r.node });
    if (blocked) r.placementBlocked = blocked;
  }
  const unhealthy = results.filter((r) => r.gpuFaults?.length);
  for (const r of unhealthy) {
    await raiseAlert(deps, {
      type: "node.unhealthy",
      severity: "critical",
      clusterId: cluster._id.toString(),
      message: `cluster ${cluster.name}: ${r.placementBlocked}`,
      at: checkedAt.toISOString(),
      dedupKey: `node.unhealthy:${cluster._id.toString()}:${r.node}`,
    });
  }
  const mismatched = results.filter((r) => r.gpuMismatch?.length && r.placementBlocked && !r.gpuFaults?.length);
  if (mismatched.length) {
    deps.logger.warn({ cluster: cluster.name, nodes: mismatched.map((r) => r.node) }, "GPU mismatch: nodes held back");
    await raiseAlert(deps, {
      type: "node.gpu_mismatch",
      severity: "warning",
      clusterId: cluster._id.toString(),
      message: `cluster ${cluster.name}: ${mismatched.map((r) => r.placementBlocked).join("; ")}`,
      at: checkedAt.toISOString(),
    });
  }
  // A node that was held back and is clean now may fit queued jobs.
  if (updated.nodes.some((n) => before.get(n.name) && !placementBlock(n))) await requestSchedulingPass(deps.bus, cluster._id);
}

async function raiseAlert(deps: ApiDeps, alert: QueuePayload<"alerts">): Promise<void> {
  await deps.bus
    .send("alerts", alert)
    .catch((err: Error) => deps.logger.warn({ err: err.message, type: alert.type }, "could not queue alert"));
}

/**
 * Accept a node's current GPU mismatch (e.g. a GPU is out for repair and the team runs on fewer):
 * the node takes placements again until a later check finds a different mismatch.
 */
export async function acknowledgeGpus(
  deps: ApiDeps,
  team: string,
  idOrName: string,
  node: string,
  by: string,
): Promise<ClusterView> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const updated = await deps.repos.clusters.acknowledgeGpus(cluster._id, node, by);
  // The node may fit queued jobs now: a scheduling pass of the cluster.
  await requestSchedulingPass(deps.bus, cluster._id);
  return clusterView(updated, team);
}

export const cordonBodySchema = z.object({ reason: z.string().min(1).max(500).optional() }).strict();

/**
 * Take a node out of placement. A cordon only stops new placements; a drain also moves the jobs
 * running there: each is stopped and retried elsewhere from its latest checkpoint (the node is
 * avoided by the retry and blocked for everyone until uncordoned).
 */
export async function cordonNode(
  deps: ApiDeps,
  team: string,
  idOrName: string,
  node: string,
  { reason }: z.output<typeof cordonBodySchema>,
  by: string,
  drain: boolean,
): Promise<ClusterView & { movedJobs?: string[] }> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const at = new Date();
  const updated = await deps.repos.clusters.setCordon(cluster._id, node, {
    by,
    at: at.toISOString(),
    drain,
    ...(reason ? { reason } : {}),
  });
  if (!drain) return clusterView(updated, team);
  const moved: string[] = [];
  for (const job of await deps.repos.jobs.activeOnNode(cluster._id, node)) {
    const stop = {
      kind: "retry" as const,
      node,
      reason: `node ${node} drained by ${by}${reason ? ` (${reason})` : ""}; restarting elsewhere from the latest checkpoint`,
      requestedAt: at,
    };
    if (await deps.repos.jobs.requestStop(job._id, job.currentAttemptId!, stop)) {
      await deps.bus.send("control", { jobId: job._id.toString(), attemptId: job.currentAttemptId! });
      moved.push(job._id.toString());
    }
  }
  deps.logger.info({ cluster: cluster.name, node, by, moved }, "node drained");
  return { ...clusterView(updated, team), movedJobs: moved };
}

/** Put a node back into placement: clears a cordon, a drain and a recorded fault; a scheduling pass of the cluster is requested. */
export async function uncordonNode(deps: ApiDeps, team: string, idOrName: string, node: string): Promise<ClusterView> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const updated = await deps.repos.clusters.setCordon(cluster._id, node, undefined);
  await requestSchedulingPass(deps.bus, cluster._id);
  return clusterView(updated, team);
}

/** Add a node to an owned cluster (pinned with `hostKey`, or on the next check when trusting on first use). */
export async function addClusterNode(
  deps: ApiDeps,
  team: string,
  idOrName: string,
  { hostKey, ...node }: z.output<typeof addNodeSchema>,
): Promise<ClusterView> {
  // Another team's cluster is a 404 whatever the body says.
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const updated = await deps.repos.clusters.addNode(cluster._id, node, hostKey);
  deps.logger.info({ cluster: cluster.name, node: node.name }, "node added");
  await requestSchedulingPass(deps.bus, cluster._id);
  return clusterView(updated, team);
}

/** Remove a node no job holds (409 otherwise: drain it first). */
export async function removeClusterNode(deps: ApiDeps, team: string, idOrName: string, node: string): Promise<ClusterView> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const updated = await deps.repos.clusters.removeNode(cluster._id, node);
  deps.logger.info({ cluster: cluster.name, node }, "node removed");
  return clusterView(updated, team);
}

/** Pin the key a re-imaged node presents now (a check never re-pins a changed key by itself). */
export async function repinHostKey(
  deps: ApiDeps,
  team: string,
  idOrName: string,
  node: string,
  { fingerprint }: z.output<typeof hostKeySchema>,
): Promise<ClusterView & { previousFingerprint?: string }> {
  const cluster = await deps.repos.clusters.getOwned(team, idOrName);
  const { cluster: updated, previous } = await deps.repos.clusters.repinHostKey(cluster._id, node, fingerprint);
  deps.logger.warn({ cluster: cluster.name, node, previous, fingerprint }, "host key re-pinned");
  return { ...clusterView(updated, team), ...(previous ? { previousFingerprint: previous } : {}) };
}
