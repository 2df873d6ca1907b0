import {
  badRequest,
  type ClusterSpec,
  type ClusterView,
  conflict,
  type NodeCordon,
  type NodeGpuCheck,
  type NodeHealth,
  type NodeSpec,
  notFound,
  placementBlock,
  UserError,
} from "@trainyard/common";
import { Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";
import type { DocumentLocks } from "./locks";
import type { AllocationDoc, ClusterDoc, Models } from "./models";

export type AllocationDecision = { ok: true; allocation: Omit<AllocationDoc, "at"> } | { ok: false; reason: string };

const MAX_RESERVE_RETRIES = 20;

export class ClusterRepo {
  constructor(
    private readonly m: Models,
    private readonly locks: DocumentLocks,
  ) {}

  private locked<T>(id: Types.ObjectId, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(`cluster:${id.toString()}`, fn);
  }

  async create(team: string, spec: ClusterSpec, credentialId: Types.ObjectId): Promise<ClusterDoc> {
    try {
      const doc = await this.m.Cluster.create({
        team,
        name: spec.name,
        sharedWith: spec.sharedWith,
        nodes: spec.nodes,
        env: spec.env,
        ...(spec.nccl ? { nccl: spec.nccl } : {}),
        ports: spec.ports,
        ssh: {
          credentialId,
          hostKeyPins: Object.entries(spec.ssh.hostKeys).map(([node, fingerprint]) => ({ node, fingerprint })),
          trustOnFirstUse: spec.ssh.trustOnFirstUse,
          jumpHost: spec.ssh.jumpHost,
          hasPassphrase: spec.ssh.passphrase !== undefined,
        },
        allocations: [],
        allocVersion: 0,
      });
      return hydrateCluster(doc.toObject())!;
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict(`a cluster named '${spec.name}' already exists`);
      throw err;
    }
  }

  async byId(id: string | Types.ObjectId): Promise<ClusterDoc | null> {
    if (!Types.ObjectId.isValid(id)) return null;
    return hydrateCluster(await this.m.Cluster.findById(id).lean<StoredCluster>());
  }

  /**
   * A cluster the team may use, by id or name: its own, or one another team shares with it (its
   * own wins when names clash). 404 for anything else, so other teams' clusters stay invisible.
   */
  async getForTeam(team: string, idOrName: string): Promise<ClusterDoc> {
    const visible = { $or: [{ team }, { sharedWith: team }] };
    const named =
      Types.ObjectId.isValid(idOrName) && /^[0-9a-f]{24}$/.test(idOrName)
        ? { $or: [{ _id: new Types.ObjectId(idOrName) }, { name: idOrName }] }
        : { name: idOrName };
    const found = (
      await this.m.Cluster.find({ $and: [visible, named] })
        .limit(20)
        .lean<StoredCluster[]>()
    ).map((c) => hydrateCluster(c)!);
    const doc = found.find((c) => c.team === team) ?? found[0];
    if (!doc) throw notFound(`cluster '${idOrName}'`);
    return doc;
  }

  /** A cluster the team owns: changes are for owners only (403 for a team it is shared with, 404 for others). */
  async getOwned(team: string, idOrName: string): Promise<ClusterDoc> {
    const doc = await this.getForTeam(team, idOrName);
    if (doc.team !== team)
      throw new UserError(403, `cluster '${doc.name}' belongs to team '${doc.team}'; only its owner may change it`);
    return doc;
  }

  /** The team's clusters and those shared with it. */
  async list(team: string): Promise<ClusterDoc[]> {
    return (
      await this.m.Cluster.find({ $or: [{ team }, { sharedWith: team }] })
        .sort({ name: 1 })
        .lean<StoredCluster[]>()
    ).map((c) => hydrateCluster(c)!);
  }

  /** Replace the list of teams an owned cluster is shared with. */
  async setSharing(id: Types.ObjectId, teams: string[]): Promise<ClusterDoc> {
    return this.locked(id, async () => {
      const doc = hydrateCluster(
        await this.m.Cluster.findOneAndUpdate(
          { _id: id },
          { $set: { sharedWith: teams } },
          { returnDocument: "after" },
        ).lean<StoredCluster>(),
      );
      if (!doc) throw notFound(`cluster '${id.toString()}'`);
      return doc;
    });
  }

  /** Pin keys for nodes that have none yet (trust on first use); an existing pin is never replaced. */
  async pinHostKeys(id: Types.ObjectId, keys: Record<string, string>): Promise<Record<string, string>> {
    return this.locked(id, async () => {
      const raw = await this.m.Cluster.findById(id).lean<StoredCluster>();
      if (!raw) return {};
      const pins = raw.ssh.hostKeyPins ?? [];
      const added = Object.fromEntries(Object.entries(keys).filter(([node]) => !pins.some((p) => p.node === node)));
      if (Object.keys(added).length) {
        const next = [...pins, ...Object.entries(added).map(([node, fingerprint]) => ({ node, fingerprint }))];
        await this.m.Cluster.updateOne({ _id: id }, { $set: { "ssh.hostKeyPins": next } });
      }
      return added;
    });
  }

  /**
   * Store what the latest check found on each node: its GPUs, and its health as far as the check
   * can tell (a clean check clears a fault a check found; a fault the monitor found stays until
   * uncordon). Nodes not named keep theirs.
   */
  async recordChecks(
    id: Types.ObjectId,
    checks: Record<string, { gpuCheck: Omit<NodeGpuCheck, "acknowledged">; faults: string[] }>,
    at = new Date(),
  ): Promise<ClusterDoc> {
    return this.changeNodes(id, (n) => {
      const check = checks[n.name];
      if (!check) return n;
      // An acknowledgement stays with the check; placementBlock ignores it once the mismatch changes.
      const ack = n.gpuCheck?.acknowledged;
      const gpuCheck = { ...check.gpuCheck, ...(ack ? { acknowledged: ack } : {}) };
      const health: NodeHealth | undefined = check.faults.length
        ? { state: "unhealthy", reasons: check.faults, at: at.toISOString(), source: "check" }
        : n.health?.source === "monitor"
          ? n.health
          : undefined;
      return withOptional({ ...n, gpuCheck }, "health", health);
    });
  }

  /** Accept a node's current GPU mismatch: it may get placements again until the next check finds another. */
  async acknowledgeGpus(id: Types.ObjectId, node: string, by: string, at = new Date()): Promise<ClusterDoc> {
    return this.changeNode(id, node, (n) => {
      if (!n.gpuCheck?.mismatch.length)
        throw conflict(`node '${node}' has no GPU mismatch to acknowledge (check the cluster first)`);
      return { ...n, gpuCheck: { ...n.gpuCheck, acknowledged: { mismatch: n.gpuCheck.mismatch, at: at.toISOString(), by } } };
    });
  }

  /** Take a node out of placement (cordon, or drain), or put it back (undefined: also forgets a fault). */
  async setCordon(id: Types.ObjectId, node: string, cordon: NodeCordon | undefined): Promise<ClusterDoc> {
    return this.changeNode(id, node, (n) => {
      const next = withOptional(n, "cordon", cordon);
      return cordon ? next : withOptional(next, "health", undefined);
    });
  }

  /** Add a node (and pin its host key); its name and user@host:port must be new to the cluster. */
  async addNode(id: Types.ObjectId, node: NodeSpec, hostKey: string | undefined): Promise<ClusterDoc> {
    return this.locked(id, async () => {
      const raw = await this.m.Cluster.findById(id).lean<StoredCluster>();
      if (!raw) throw notFound(`cluster '${id.toString()}'`);
      if (raw.nodes.some((n) => n.name === node.name)) throw conflict(`the cluster already has a node named '${node.name}'`);
      const ep = (n: { user: string; host: string; port: number }) => `${n.user}@${n.host}:${n.port}`;
      const same = raw.nodes.find((n) => ep(n) === ep(node));
      if (same) throw conflict(`node '${same.name}' is already ${ep(node)}`);
      if (!hostKey && !raw.ssh.trustOnFirstUse)
        throw badRequest(`node '${node.name}' needs a hostKey (the cluster does not trust on first use)`);
      const pins = [
        ...(raw.ssh.hostKeyPins ?? []).filter((p) => p.node !== node.name),
        ...(hostKey ? [{ node: node.name, fingerprint: hostKey }] : []),
      ];
      const nodes = [...raw.nodes, node];
      await this.m.Cluster.updateOne({ _id: id }, { $set: { nodes, "ssh.hostKeyPins": pins } });
      return hydrateCluster({ ...raw, nodes, ssh: { ...raw.ssh, hostKeyPins: pins } })!;
    });
  }

  /** Remove a node nothing holds (drain it first); its pin goes with it. */
  async removeNode(id: Types.ObjectId, node: string): Promise<ClusterDoc> {
    return this.locked(id, async () => {
      const raw = await this.m.Cluster.findById(id).lean<StoredCluster>();
      if (!raw) throw notFound(`cluster '${id.toString()}'`);
      if (!raw.nodes.some((n) => n.name === node)) throw notFound(`node '${node}'`);
      if (raw.nodes.length === 1) throw conflict(`node '${node}' is the cluster's last node`);
      const holders = raw.allocations.filter((a) => a.nodes.some((n) => n.node === node));
      if (holders.length)
        throw conflict(
          `node '${node}' is in use by ${holders.length} job(s); drain it and wait for them to move (POST …/nodes/${node}/drain)`,
        );
      const nodes = raw.nodes.filter((n) => n.name !== node);
      const pins = (raw.ssh.hostKeyPins ?? []).filter((p) => p.node !== node);
      // Version-checked like a reservation, so no allocation computed from the old node list lands.
      const res = await this.m.Cluster.updateOne(
        { _id: id, allocVersion: raw.allocVersion },
        { $set: { nodes, "ssh.hostKeyPins": pins }, $inc: { allocVersion: 1 } },
      );
      if (res.matchedCount === 0) throw conflict("the cluster changed meanwhile; try again");
      return hydrateCluster({ ...raw, nodes, ssh: { ...raw.ssh, hostKeyPins: pins }, allocVersion: raw.allocVersion + 1 })!;
    });
  }

  /** Replace a node's pinned host key (after a re-image); returns the cluster and the key it replaced. */
  async repinHostKey(id: Types.ObjectId, node: string, fingerprint: string): Promise<{ cluster: ClusterDoc; previous?: string }> {
    return this.locked(id, async () => {
      const raw = await this.m.Cluster.findById(id).lean<StoredCluster>();
      if (!raw) throw notFound(`cluster '${id.toString()}'`);
      if (!raw.nodes.some((n) => n.name === node)) throw notFound(`node '${node}'`);
      const previous = raw.ssh.hostKeyPins?.find((p) => p.node === node)?.fingerprint;
      const pins = [...(raw.ssh.hostKeyPins ?? []).filter((p) => p.node !== node), { node, fingerprint }];
      await this.m.Cluster.updateOne({ _id: id }, { $set: { "ssh.hostKeyPins": pins } });
      const cluster = hydrateCluster({ ...raw, ssh: { ...raw.ssh, hostKeyPins: pins } })!;
      return { cluster, ...(previous ? { previous } : {}) };
    });
  }

  /** Mark a node faulty (the monitor found GPU faults): no new placement until uncordoned. */
  async markUnhealthy(id: Types.ObjectId, node: string, health: NodeHealth): Promise<ClusterDoc> {
    return this.changeNode(id, node, (n) => ({ ...n, health }));
  }

  private changeNode(id: Types.ObjectId, node: string, change: (n: StoredNode) => StoredNode): Promise<ClusterDoc> {
    return this.changeNodes(
      id,
      (n) => (n.name === node ? change(n) : n),
      (nodes) => {
        if (!nodes.some((n) => n.name === node)) throw notFound(`node '${node}'`);
      },
    );
  }

  /** Read-modify-write of the node list under the cluster's lock (nodes live in one array). */
  private changeNodes(
    id: Types.ObjectId,
    change: (n: StoredNode) => StoredNode,
    precheck?: (nodes: StoredNode[]) => void,
  ): Promise<ClusterDoc> {
    return this.locked(id, async () => {
      const raw = await this.m.Cluster.findById(id).lean<StoredCluster>();
      if (!raw) throw notFound(`cluster '${id.toString()}'`);
      precheck?.(raw.nodes);
      const nodes = raw.nodes.map(change);
      await this.m.Cluster.updateOne({ _id: id }, { $set: { nodes } });
      return hydrateCluster({ ...raw, nodes })!;
    });
  }

  /**
   * Gang-reserve resources for a job: `decide` sees the current allocations and returns the new one.
   * Idempotent per job (an existing reservation is returned as is) and safe across replicas: the
   * write is conditional on the allocation version it was computed from, retried on conflict.
   */
  async reserve(
    clusterId: Types.ObjectId,
    jobId: string,
    decide: (cluster: ClusterDoc) => AllocationDecision,
  ): Promise<AllocationDecision> {
    return this.locked(clusterId, () => this.reserveLocked(clusterId, jobId, decide));
  }

  private async reserveLocked(
    clusterId: Types.ObjectId,
    jobId: string,
    decide: (cluster: ClusterDoc) => AllocationDecision,
  ): Promise<AllocationDecision> {
    for (let i = 0; i < MAX_RESERVE_RETRIES; i++) {
      const cluster = await this.byId(clusterId);
      if (!cluster) return { ok: false, reason: "cluster no longer exists" };
      const existing = cluster.allocations.find((a) => a.jobId === jobId && !a.held);
      if (existing) return { ok: true, allocation: existing };
      const decision = decide(cluster);
      if (!decision.ok) return decision;
      const updated = await this.m.Cluster.findOneAndUpdate(
        { _id: clusterId, allocVersion: cluster.allocVersion },
        { $push: { allocations: { ...decision.allocation, at: new Date() } }, $inc: { allocVersion: 1 } },
        { returnDocument: "after" },
      ).lean();
      if (updated) return decision;
    }
    throw new Error(`could not reserve on cluster ${clusterId} after ${MAX_RESERVE_RETRIES} conflicting updates`);
  }

  /**
   * Free a job's reservation except on nodes where its attempt could not be verified stopped: there
   * the GPUs and ports stay held (an allocation marked `held`) until a clean-up verifies them.
   */
  async releaseExcept(clusterId: Types.ObjectId, jobId: string, attemptId: string, unverifiedNodes: string[]): Promise<void> {
    await this.locked(clusterId, async () => {
      const cluster = await this.byId(clusterId);
      const own = cluster?.allocations.find((a) => isReservationOf(a, jobId));
      if (!cluster || !own) return;
      const kept = own.nodes.filter((n) => unverifiedNodes.includes(n.node));
      const allocations = cluster.allocations.filter((a) => !isReservationOf(a, jobId));
      if (kept.length) allocations.push({ jobId, attemptId, nodes: kept, at: new Date(), held: true });
      await this.m.Cluster.updateOne(
        { _id: clusterId, allocVersion: cluster.allocVersion },
        { $set: { allocations }, $inc: { allocVersion: 1 } },
      );
    });
  }

  /** Held allocations (see releaseExcept) across all clusters. */
  async listHeld(): Promise<Array<{ cluster: ClusterDoc; held: AllocationDoc }>> {
    const clusters = (await this.m.Cluster.find({}).lean<StoredCluster[]>()).map((c) => hydrateCluster(c)!);
    return clusters.flatMap((cluster) => cluster.allocations.filter((a) => a.held).map((held) => ({ cluster, held })));
  }

  /** Free a job's live reservation (no-op when it holds none); its held allocations stay. */
  release(clusterId: Types.ObjectId, jobId: string): Promise<boolean> {
    return this.removeAllocations(clusterId, (a) => isReservationOf(a, jobId));
  }

  /** Free what an ended attempt still held on unverified nodes, once they are verified clean. */
  releaseHeld(clusterId: Types.ObjectId, jobId: string, attemptId: string): Promise<boolean> {
    return this.removeAllocations(clusterId, (a) => a.held === true && a.jobId === jobId && a.attemptId === attemptId);
  }

  private removeAllocations(clusterId: Types.ObjectId, match: (a: AllocationDoc) => boolean): Promise<boolean> {
    // Read and write under the document lock: FerretDB v1 cannot match into arrays of documents.
    return this.locked(clusterId, async () => {
      const cluster = await this.byId(clusterId);
      if (!cluster?.allocations.some(match)) return false;
      await this.m.Cluster.updateOne(
        { _id: clusterId, allocVersion: cluster.allocVersion },
        // $set of the filtered list rather than $pull: FerretDB v1 does not pull by a sub-document condition.
        { $set: { allocations: cluster.allocations.filter((a) => !match(a)) }, $inc: { allocVersion: 1 } },
      );
      return true;
    });
  }
}

/** A job's live reservation (not what an ended attempt still holds). */
const isReservationOf = (a: AllocationDoc, jobId: string) => a.jobId === jobId && !a.held;

/** Allocations stored before `held` existed named held ones `held:<jobId>:<attemptId>`. */
const LEGACY_HELD = /^held:([0-9a-f]{24}):/;
function upgradeAllocation(a: AllocationDoc): AllocationDoc {
  const legacy = LEGACY_HELD.exec(a.jobId);
  return legacy ? { ...a, jobId: legacy[1]!, held: true } : a;
}

type StoredCluster = Omit<ClusterDoc, "ssh"> & {
  ssh: Omit<ClusterDoc["ssh"], "hostKeys"> & { hostKeyPins?: Array<{ node: string; fingerprint: string }> };
};

type StoredNode = ClusterDoc["nodes"][number];

/** `obj` with `key` set to `value`, or without the key at all when `value` is undefined (never stored as null). */
function withOptional<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): T {
  const { [key]: _old, ...rest } = obj;
  return (value === undefined ? rest : { ...rest, [key]: value }) as T;
}

function hydrateCluster(raw: StoredCluster | null): ClusterDoc | null {
  if (!raw) return null;
  const { hostKeyPins, ...ssh } = raw.ssh;
  return {
    ...raw,
    allocations: (raw.allocations ?? []).map(upgradeAllocation),
    ssh: { ...ssh, hostKeys: Object.fromEntries((hostKeyPins ?? []).map((p) => [p.node, p.fingerprint])) },
  };
}

/** The cluster as `viewer` may see it: only its owner sees whom it is shared with. */
export function clusterView(doc: ClusterDoc, viewer: string = doc.team): ClusterView {
  return {
    id: doc._id.toString(),
    name: doc.name,
    team: doc.team,
    ...(viewer === doc.team ? { sharedWith: doc.sharedWith ?? [] } : {}),
    nodes: doc.nodes.map((n) => {
      const blocked = placementBlock(n);
      return {
        name: n.name,
        host: n.host,
        port: n.port,
        user: n.user,
        gpus: n.gpus,
        gpuType: n.gpuType,
        workRoot: n.workRoot,
        ...(n.nccl ? { nccl: n.nccl } : {}),
        // Reserved by jobs now (held allocations included): counts only, whoever holds them.
        gpusUsed: (doc.allocations ?? []).reduce(
          (sum, a) => sum + a.nodes.filter((x) => x.node === n.name).reduce((k, x) => k + x.gpuIndices.length, 0),
          0,
        ),
        ...(n.gpuCheck ? { gpuCheck: n.gpuCheck } : {}),
        ...(n.cordon ? { cordon: n.cordon } : {}),
        ...(n.health ? { health: n.health } : {}),
        ...(blocked ? { placementBlocked: blocked } : {}),
      };
    }),
    env: doc.env ?? {},
    ...(doc.nccl ? { nccl: doc.nccl } : {}),
    ports: { min: doc.ports.min, max: doc.ports.max },
    ssh: {
      hostKeys: doc.ssh.hostKeys ?? {},
      trustOnFirstUse: doc.ssh.trustOnFirstUse,
      ...(doc.ssh.jumpHost?.host ? { jumpHost: doc.ssh.jumpHost } : {}),
      hasPassphrase: doc.ssh.hasPassphrase,
    },
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}
