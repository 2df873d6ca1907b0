import { PassThrough } from "node:stream";
import type { CheckpointDoc, ClusterDoc, JobDoc, Repos } from "@trainyard/db";
import { tarCreateCommand, tarExtractCommand } from "@trainyard/frameworks";
import {
  createObjectStore,
  formatStorageUri,
  type ObjectStore,
  parseStorageCredentials,
  parseStorageUri,
} from "@trainyard/storage";
import { checkpointDirFor } from "./checkpoint-dir";
import type { NodeGateway } from "./node-gateway";

export interface CheckpointStoreDeps {
  repos: Repos;
  gateway: NodeGateway;
}

/** The object store a job copies its checkpoints to, or null when it keeps them on nodes only. */
export async function checkpointStoreFor(repos: Repos, job: JobDoc): Promise<{ store: ObjectStore; prefix: string } | null> {
  const storage = job.spec.checkpoints?.storage;
  if (!storage) return null;
  const doc = await repos.storageCredentials.byName(job.team, storage.credential);
  if (!doc) throw new Error(`storage credentials '${storage.credential}' no longer exist`);
  return { store: createObjectStore(parseStorageCredentials(repos.storageCredentials.open(doc))), prefix: storage.prefix };
}

/** One tar object per checkpoint: <prefix><jobId>/step-<n>-<checkpointId>.tar */
export function checkpointObjectKey(prefix: string, c: CheckpointDoc): string {
  return `${prefix}${c.jobId.toString()}/step-${c.step}-${c._id.toString()}.tar`;
}

/** Stream a complete checkpoint from its node into the job's object store and record where it went. */
export async function copyCheckpointToStore(
  deps: CheckpointStoreDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  c: CheckpointDoc,
): Promise<string | null> {
  if (c.storedUri) return c.storedUri;
  const target = await checkpointStoreFor(deps.repos, job);
  if (!target) return null;
  try {
    const key = checkpointObjectKey(target.prefix, c);
    const body = new PassThrough();
    const upload = target.store.putStream(key, body);
    await deps.gateway.pipeFrom(cluster, c.node, tarCreateCommand(c.path), body);
    await upload;
    const uri = formatStorageUri({ backend: target.store.backend, bucket: target.store.bucket, key });
    await deps.repos.checkpoints.setStored(c._id, uri);
    return uri;
  } finally {
    await target.store.close?.();
  }
}

/**
 * Place a stored checkpoint on a node that lacks it (before a resume there): unpack its tar into
 * the job's checkpoint directory on that node. Returns the path to resume from.
 */
export async function restoreCheckpoint(
  deps: CheckpointStoreDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  c: CheckpointDoc,
  nodeName: string,
): Promise<string> {
  const loc = c.storedUri ? parseStorageUri(c.storedUri) : null;
  const node = cluster.nodes.find((n) => n.name === nodeName);
  if (!loc || loc.backend === "node" || !node) throw new Error(`checkpoint ${c._id} has no object-store copy`);
  const target = await checkpointStoreFor(deps.repos, job);
  if (!target) throw new Error("the job no longer has checkpoint storage configured");
  try {
    const dir = checkpointDirFor(job, node.workRoot);
    await deps.gateway.pipeTo(cluster, nodeName, tarExtractCommand(dir), await target.store.getStream(loc.key));
    return `${dir}/${c.path.slice(c.path.lastIndexOf("/") + 1)}`;
  } finally {
    await target.store.close?.();
  }
}

/** Remove the object-store copy of a checkpoint, if it has one. */
export async function deleteStoredCopy(repos: Repos, job: JobDoc, c: CheckpointDoc): Promise<void> {
  const loc = c.storedUri ? parseStorageUri(c.storedUri) : null;
  if (!loc || loc.backend === "node") return;
  const target = await checkpointStoreFor(repos, job);
  if (!target) return;
  try {
    await target.store.delete(loc.key);
  } finally {
    await target.store.close?.();
  }
}
