import type { SecretBox } from "@trainyard/common";
import type { Connection } from "mongoose";
import { ClusterRepo } from "./clusters";
import { CredentialRepo } from "./credentials";
import { JobRepo } from "./jobs";
import type { DocumentLocks } from "./locks";
import { registerModels } from "./models";

export * from "./clusters";
export * from "./connection";
export * from "./credentials";
export * from "./jobs";
export * from "./locks";
export * from "./models";

export interface Repos {
  clusters: ClusterRepo;
  credentials: CredentialRepo;
  jobs: JobRepo;
}

/** The only way services reach MongoDB collections. */
export function createRepos(conn: Connection, box: SecretBox, locks: DocumentLocks): Repos {
  const m = registerModels(conn);
  return { clusters: new ClusterRepo(m, locks), credentials: new CredentialRepo(m, box), jobs: new JobRepo(m, locks) };
}

/** Build the indexes now (tests and first start), rather than lazily on first use. */
export async function syncIndexes(conn: Connection): Promise<void> {
  const m = registerModels(conn);
  await Promise.all([m.Cluster.syncIndexes(), m.Credential.syncIndexes(), m.Job.syncIndexes()]);
}
