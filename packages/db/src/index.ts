import { SecretBox } from "@trainyard/common";
import type { Connection } from "mongoose";
import { ApiKeyRepo, AuditRepo, TeamRepo } from "./access";
import { AlertRepo } from "./alerting";
import { BudgetRepo } from "./budgets";
import { CheckpointRepo } from "./checkpoints";
import { ClusterRepo } from "./clusters";
import { CredentialRepo } from "./credentials";
import { JobCostRepo } from "./job-costs";
import { JobRepo } from "./jobs";
import type { DocumentLocks } from "./locks";
import { registerModels } from "./models";
import { ProgressRepo } from "./progress";
import { RateCardRepo } from "./rate-cards";
import { StorageCredentialRepo } from "./storage-credentials";
import { TelemetryRepo } from "./telemetry";

export * from "./access";
export * from "./alerting";
export * from "./budgets";
export * from "./checkpoints";
export * from "./clusters";
export * from "./connection";
export * from "./credentials";
export * from "./job-costs";
export * from "./jobs";
export * from "./list-pages";
export * from "./locks";
export * from "./models";
export * from "./progress";
export * from "./rate-cards";
export * from "./rotate-secrets";
export * from "./storage-credentials";
export * from "./telemetry";

export interface Repos {
  checkpoints: CheckpointRepo;
  clusters: ClusterRepo;
  credentials: CredentialRepo;
  jobs: JobRepo;
  /** Cost fields of jobs (written by the cost service only). */
  jobCosts: JobCostRepo;
  rateCards: RateCardRepo;
  budgets: BudgetRepo;
  alerts: AlertRepo;
  storageCredentials: StorageCredentialRepo;
  teams: TeamRepo;
  apiKeys: ApiKeyRepo;
  audit: AuditRepo;
  /** GPU and process samples of running attempts. */
  telemetry: TelemetryRepo;
  /** Progress history (step, loss) of jobs, for their charts. */
  progress: ProgressRepo;
}

/** The only way services reach MongoDB collections. */
export function createRepos(conn: Connection, box: SecretBox | undefined, locks: DocumentLocks): Repos {
  const m = registerModels(conn);
  // A service without TRAINYARD_SECRET_KEY (cost) gets repos that refuse to seal or open secrets.
  return {
    checkpoints: new CheckpointRepo(conn),
    clusters: new ClusterRepo(m, locks),
    credentials: new CredentialRepo(m, box ?? noSecretBox()),
    jobs: new JobRepo(m, locks),
    jobCosts: new JobCostRepo(m, locks),
    rateCards: new RateCardRepo(conn),
    budgets: new BudgetRepo(conn, locks),
    alerts: new AlertRepo(conn, box, locks),
    storageCredentials: new StorageCredentialRepo(conn, box ?? noSecretBox()),
    teams: new TeamRepo(conn),
    apiKeys: new ApiKeyRepo(conn),
    audit: new AuditRepo(conn),
    telemetry: new TelemetryRepo(conn),
    progress: new ProgressRepo(conn),
  };
}

/** Build the indexes now (tests and first start), rather than lazily on first use. */
export async function syncIndexes(conn: Connection): Promise<void> {
  const m = registerModels(conn);
  await Promise.all([
    m.Cluster.syncIndexes(),
    m.Credential.syncIndexes(),
    m.Job.syncIndexes(),
    new CheckpointRepo(conn).syncIndexes(),
    new RateCardRepo(conn).syncIndexes(),
    new BudgetRepo(conn, NO_LOCKS).syncIndexes(),
    new AlertRepo(conn, undefined, NO_LOCKS).syncIndexes(),
    new StorageCredentialRepo(conn, noSecretBox()).syncIndexes(),
    new TeamRepo(conn).syncIndexes(),
    new ApiKeyRepo(conn).syncIndexes(),
    new AuditRepo(conn).syncIndexes(),
    new TelemetryRepo(conn).syncIndexes(),
    new ProgressRepo(conn).syncIndexes(),
  ]);
}

const NO_LOCKS: DocumentLocks = { withLock: (_key, fn) => fn() };

/** A SecretBox stand-in for services that hold no secret key: any use is an error. */
function noSecretBox(): SecretBox {
  return Object.assign(Object.create(SecretBox.prototype) as SecretBox, {
    seal: () => {
      throw new Error("this service has no TRAINYARD_SECRET_KEY");
    },
    open: () => {
      throw new Error("this service has no TRAINYARD_SECRET_KEY");
    },
  });
}
