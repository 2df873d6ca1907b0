import {
  type AttemptOutcomeStatus,
  JOB_ATTEMPT_OUTCOMES,
  JOB_STATUSES,
  type JobSpec,
  type JobStatus,
  type NcclSettings,
  NODE_STATES,
  type NodeCordon,
  type NodeGpuCheck,
  type NodeHealth,
  type NodeState,
  STOP_KINDS,
  type StopKind,
} from "@trainyard/common";
import { type Connection, Schema, type Types } from "mongoose";

const opts = { _id: false } as const;

// ---------- clusters ----------
export interface NodeAllocationDoc {
  node: string;
  gpuIndices: number[];
  ports: number[];
}
export interface AllocationDoc {
  /** Always the id of the job that holds it. */
  jobId: string;
  attemptId: string;
  nodes: NodeAllocationDoc[];
  at: Date;
  /**
   * Kept after the attempt ended, on nodes where it could not be verified stopped (they were
   * unreachable), until a clean-up verifies them; never the job's live reservation.
   */
  held?: boolean;
}
export interface ClusterDoc {
  _id: Types.ObjectId;
  team: string;
  name: string;
  /** Other teams whose jobs may run here (they see it; only the owner changes it). */
  sharedWith: string[];
  nodes: Array<{
    name: string;
    host: string;
    port: number;
    user: string;
    gpus: number;
    gpuType: string;
    workRoot: string;
    /** The last nvidia-smi check (cluster check); see placementBlock. */
    gpuCheck?: NodeGpuCheck;
    /** Taken out of placement by an admin (cordon/drain). */
    cordon?: NodeCordon;
    /** Found faulty by a check or the monitor. */
    health?: NodeHealth;
    nccl?: NcclSettings;
  }>;
  env: Record<string, string>;
  nccl?: NcclSettings;
  ports: { min: number; max: number };
  ssh: {
    credentialId: Types.ObjectId;
    /** Pinned fingerprints by node name (stored as a list: node names may contain '.'). */
    hostKeys: Record<string, string>;
    trustOnFirstUse: boolean;
    jumpHost?: { host: string; port: number; user: string; hostKey: string };
    hasPassphrase: boolean;
  };
  /** Gang reservations of GPUs and ports; changed only by version-checked single-document updates. */
  allocations: AllocationDoc[];
  allocVersion: number;
  createdAt: Date;
  updatedAt: Date;
}

const clusterSchema = new Schema<ClusterDoc>(
  {
    team: { type: String, required: true },
    name: { type: String, required: true },
    sharedWith: { type: [String], default: [] },
    nodes: [
      new Schema(
        {
          name: String,
          host: String,
          port: Number,
          user: String,
          gpus: Number,
          gpuType: String,
          workRoot: String,
          gpuCheck: { type: Schema.Types.Mixed, default: undefined },
          cordon: { type: Schema.Types.Mixed, default: undefined },
          health: { type: Schema.Types.Mixed, default: undefined },
          nccl: { type: Schema.Types.Mixed, default: undefined },
        },
        opts,
      ),
    ],
    env: { type: Schema.Types.Mixed, default: {} },
    nccl: { type: Schema.Types.Mixed, default: undefined },
    ports: new Schema({ min: Number, max: Number }, opts),
    ssh: new Schema(
      {
        credentialId: { type: Schema.Types.ObjectId, required: true },
        // MongoDB-wire servers refuse '.' in keys (FerretDB does), and node names may hold one.
        hostKeyPins: { type: [new Schema({ node: String, fingerprint: String }, opts)], default: [] },
        trustOnFirstUse: { type: Boolean, default: false },
        jumpHost: new Schema({ host: String, port: Number, user: String, hostKey: String }, opts),
        hasPassphrase: { type: Boolean, default: false },
      },
      opts,
    ),
    allocations: [
      new Schema(
        {
          jobId: String,
          attemptId: String,
          nodes: [new Schema({ node: String, gpuIndices: [Number], ports: [Number] }, opts)],
          at: Date,
          held: Boolean,
        },
        opts,
      ),
    ],
    allocVersion: { type: Number, default: 0 },
  },
  { timestamps: true, minimize: false },
);
clusterSchema.index({ team: 1, name: 1 }, { unique: true });
clusterSchema.index({ sharedWith: 1 });

// ---------- credentials ----------
export interface CredentialDoc {
  _id: Types.ObjectId;
  team: string;
  kind: "ssh";
  /** AES-256-GCM envelopes (see SecretBox); never returned by the API. */
  sealedPrivateKey: string;
  sealedPassphrase?: string;
  createdAt: Date;
}
const credentialSchema = new Schema<CredentialDoc>(
  {
    team: { type: String, required: true },
    kind: { type: String, enum: ["ssh"], required: true },
    sealedPrivateKey: { type: String, required: true },
    sealedPassphrase: String,
  },
  { timestamps: { createdAt: true, updatedAt: false } },
);

// ---------- jobs ----------
export interface AttemptNodeDoc {
  name: string;
  host: string;
  nodeRank: number;
  gpuIndices: number[];
  ports: number[];
  state: NodeState;
  exitCode?: number;
  pgid?: number;
  missedChecks: number;
  lastSeenAt?: Date;
  logTail?: string;
}
export interface AttemptDoc {
  id: string;
  number: number;
  nodes: AttemptNodeDoc[];
  masterAddr: string;
  createdAt: Date;
  startedAt?: Date;
  endedAt?: Date;
  outcome?: AttemptOutcomeStatus;
  reason?: string;
  /** When hang detection alerted for this attempt (once per attempt). */
  stalledAt?: Date;
  /** When the idle-GPU alert of this attempt went out (once per attempt). */
  gpuIdleAlertedAt?: Date;
  /** Node blamed for the failure, avoided by the next attempt when the cluster has a spare. */
  failedNode?: string;
  /** Nodes where this attempt's inter-node SSH key may still be authorised (Horovod/MPI). */
  sshKeyNodes?: string[];
}
export interface JobCostDoc {
  usd: number;
  gpuHours: number;
  burnUsdPerHour: number;
  forecastUsd?: number;
  etaSeconds?: number;
  lines: Array<{ gpuType: string; month: string; usd: number; gpuHours: number }>;
  final: boolean;
  updatedAt: Date;
}
export interface StopRequestDoc {
  kind: StopKind;
  reason: string;
  requestedAt: Date;
  node?: string;
  rank?: number;
  exitCode?: number;
}
export interface PreemptRequestDoc {
  byJobId: string;
  byJobName: string;
  requestedAt: Date;
  deadline: Date;
}
export interface JobDoc {
  _id: Types.ObjectId;
  team: string;
  name: string;
  project: string;
  framework: string;
  clusterId: Types.ObjectId;
  clusterName: string;
  /** The submitted spec; `files` is rebuilt from the `files` list on read (file names hold '.'). */
  spec: JobSpec;
  specHash: string;
  /** Stored inline files; read code uses spec.files. */
  files?: Array<{ path: string; content: string }>;
  /** Names of the inline files, kept apart so listings need not load the contents. */
  fileNames: string[];
  idempotencyKey: string;
  status: JobStatus;
  currentAttemptId?: string;
  attempts: AttemptDoc[];
  progress?: { step: number; totalSteps?: number; loss?: number; ratio?: number; updatedAt: Date };
  waitingReason?: string;
  /** Queue priority (spec.priority, top-level so queue-position counts can filter on it); absent on jobs stored before it = 0. */
  priority?: number;
  /** When a RETRYING job's next attempt is due (the launcher's sweep requests a pass for overdue ones). */
  retryAt?: Date;
  /**
   * While LAUNCHING: the launcher starting the attempt renews this while it works; once it has
   * passed, that launcher is gone and another replica's reconciler takes the launch over.
   */
  launchLeaseUntil?: Date;
  launchLeaseOwner?: string;
  /** Some attempt's inter-node SSH key is still authorised somewhere (see JobRepo.setSshKeyNodes). */
  sshKeysPending?: boolean;
  /** Started and not yet priced to the end: the cost sweep's set (JobCostRepo.listToPrice). */
  costPending?: boolean;
  failure?: { reason: string; node?: string; rank?: number; exitCode?: number };
  stopRequest?: StopRequestDoc;
  /** A pending checkpoint-aware preemption (see JobRepo.requestPreemption). */
  preemptRequest?: PreemptRequestDoc;
  /** Written by the cost service only (see JobRepo.setCost). */
  cost?: JobCostDoc;
  /** The list page the job was filed in when it was created, and its group at every level (list-pages.ts). */
  listPage?: number;
  listPages?: string[];
  createdAt: Date;
  updatedAt: Date;
  startedAt?: Date;
  endedAt?: Date;
}

const attemptNodeSchema = new Schema<AttemptNodeDoc>(
  {
    name: String,
    host: String,
    nodeRank: Number,
    gpuIndices: [Number],
    ports: [Number],
    state: { type: String, enum: NODE_STATES },
    exitCode: Number,
    pgid: Number,
    missedChecks: { type: Number, default: 0 },
    lastSeenAt: Date,
    logTail: String,
  },
  opts,
);
const attemptSchema = new Schema<AttemptDoc>(
  {
    id: String,
    number: Number,
    nodes: [attemptNodeSchema],
    masterAddr: String,
    createdAt: Date,
    startedAt: Date,
    endedAt: Date,
    outcome: { type: String, enum: JOB_ATTEMPT_OUTCOMES },
    reason: String,
    stalledAt: Date,
    gpuIdleAlertedAt: Date,
    failedNode: String,
    sshKeyNodes: { type: [String], default: undefined },
  },
  opts,
);
const jobSchema = new Schema<JobDoc>(
  {
    team: { type: String, required: true },
    name: { type: String, required: true },
    project: { type: String, required: true },
    framework: { type: String, required: true },
    clusterId: { type: Schema.Types.ObjectId, required: true },
    clusterName: { type: String, required: true },
    spec: { type: Schema.Types.Mixed, required: true },
    files: { type: [new Schema({ path: String, content: String }, opts)], default: [] },
    fileNames: { type: [String], default: [] },
    specHash: { type: String, required: true },
    idempotencyKey: { type: String, required: true },
    status: { type: String, enum: JOB_STATUSES, required: true },
    currentAttemptId: String,
    attempts: { type: [attemptSchema], default: [] },
    progress: new Schema({ step: Number, totalSteps: Number, loss: Number, ratio: Number, updatedAt: Date }, opts),
    waitingReason: String,
    priority: Number,
    retryAt: Date,
    launchLeaseUntil: Date,
    launchLeaseOwner: String,
    sshKeysPending: Boolean,
    costPending: Boolean,
    failure: new Schema({ reason: String, node: String, rank: Number, exitCode: Number }, opts),
    stopRequest: new Schema(
      {
        kind: { type: String, enum: STOP_KINDS },
        reason: String,
        requestedAt: Date,
        node: String,
        rank: Number,
        exitCode: Number,
      },
      opts,
    ),
    preemptRequest: new Schema({ byJobId: String, byJobName: String, requestedAt: Date, deadline: Date }, opts),
    cost: new Schema(
      {
        usd: Number,
        gpuHours: Number,
        burnUsdPerHour: Number,
        forecastUsd: Number,
        etaSeconds: Number,
        lines: [new Schema({ gpuType: String, month: String, usd: Number, gpuHours: Number }, opts)],
        final: Boolean,
        updatedAt: Date,
      },
      opts,
    ),
    startedAt: Date,
    endedAt: Date,
    listPage: Number,
    listPages: { type: [String], default: undefined },
  },
  { timestamps: true, minimize: false },
);
// Indexes of `jobs`, each with the queries it serves. packages/db/src/indexes.int.test.ts runs
// `explain` on each of these queries against the real backend; docs/architecture.md ("Indexes")
// says what each backend does with them (FerretDB v1 on PostgreSQL cannot use them: see there).

// Submit with an Idempotency-Key: JobRepo.create's duplicate-key lookup {team, idempotencyKey};
// unique, so two concurrent submits with one key create one job.
jobSchema.index({ team: 1, idempotencyKey: 1 }, { unique: true });

// GET /v1/jobs (with or without ?status=, ?project=): JobRepo.list walks groups of list pages,
// one equality each: {team[, status][, project], listPages} (list-pages.ts). Multikey.
jobSchema.index({ team: 1, listPages: 1 });

// Quota counts: JobRepo.listByTeam {team, status: {$in: [LAUNCHING, RUNNING]}} (core/quotas.ts);
// queued jobs of a team on a quota change: listByTeam(team, [QUEUED]);
// stop budgets: JobCostRepo.listWaitingInScope {team, status: QUEUED}.
jobSchema.index({ team: 1, status: 1, createdAt: -1, _id: -1 });

// Project budgets: JobCostRepo.listInScope {team, project, startedAt: {$exists}}.
jobSchema.index({ team: 1, project: 1, createdAt: -1, _id: -1 });

// The scheduler's queue: JobRepo.waitingInQueueOrder {clusterId, status} (one query per waiting
// status) sorted {priority: -1, createdAt: 1, _id: 1}, keyset pages; also a cluster's jobs in a
// status (listByCluster: the running jobs preemption may stop; activeOnNode).
jobSchema.index({ clusterId: 1, status: 1, priority: -1, createdAt: 1, _id: 1 });

// Sweeps by status, sorted {createdAt: 1}: JobRepo.listByStatus (launcher reconcile of PENDING,
// RETRYING, LAUNCHING); JobRepo.runningWithStopRequest {status: RUNNING, stopRequest: {$exists}}
// (launcher reconcile); JobRepo.clustersWith (distinct clusterId by status: the monitor's RUNNING
// sweep, the launcher's QUEUED one); cost sweep JobCostRepo.listActive (one equality per status).
jobSchema.index({ status: 1, createdAt: 1 });

// The cost sweep: JobCostRepo.listToPrice {costPending: true}.
jobSchema.index({ costPending: 1 });

// Cost roll-ups: JobCostRepo.listRunSince {startedAt: {$exists, $lt}, $or: endedAt...}.
jobSchema.index({ startedAt: 1, endedAt: 1 });

// Inter-node SSH keys still to revoke: JobRepo.withPendingSshKeys {sshKeysPending: true}
// sorted {updatedAt: 1}.
jobSchema.index({ sshKeysPending: 1, updatedAt: 1 });

export function registerModels(conn: Connection) {
  return {
    Cluster: conn.models.Cluster ?? conn.model<ClusterDoc>("Cluster", clusterSchema, "clusters"),
    Credential: conn.models.Credential ?? conn.model<CredentialDoc>("Credential", credentialSchema, "credentials"),
    Job: conn.models.Job ?? conn.model<JobDoc>("Job", jobSchema, "jobs"),
  } as {
    Cluster: import("mongoose").Model<ClusterDoc>;
    Credential: import("mongoose").Model<CredentialDoc>;
    Job: import("mongoose").Model<JobDoc>;
  };
}
export type Models = ReturnType<typeof registerModels>;
