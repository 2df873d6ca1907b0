import { z } from "zod";
import { absolutePathSchema, envSchema, nameSchema, relativePathSchema } from "./names";
import type { JobCost } from "./pricing";

/** Frameworks this build can really launch. Others are refused with a 400, not accepted and faked. */
/** `command`: any launcher; the job's command runs once per node with the documented environment. */
export const FRAMEWORKS = ["pytorch", "horovod", "tensorflow", "command"] as const;
export const frameworkSchema = z.enum(FRAMEWORKS, {
  error: (issue) => `unknown framework ${JSON.stringify(issue.input)}; supported: ${FRAMEWORKS.join(", ")}`,
});
export type Framework = z.infer<typeof frameworkSchema>;

export const MAX_INLINE_FILES_BYTES = 1024 * 1024;

const patternList = z
  .array(z.string().min(1).max(200))
  .max(32)
  .superRefine((list, ctx) => {
    list.forEach((p, i) => {
      try {
        new RegExp(p);
      } catch {
        ctx.addIssue({ code: "custom", path: [i], message: `'${p}' is not a valid regular expression` });
      }
    });
  });

/**
 * When a failed attempt is restarted from the latest complete checkpoint. A lost node and any
 * failure not classed as fatal retry; fatal exit codes or log patterns fail at once.
 */
export const retryPolicySchema = z
  .object({
    maxRetries: z.number().int().min(0).max(100).default(0),
    /** Delay before attempt n+1 is launched: backoffSeconds x 2^(n-1), capped at maxBackoffSeconds. */
    backoffSeconds: z.number().min(0).max(3600).default(5),
    maxBackoffSeconds: z.number().min(0).max(86_400).default(300),
    fatalExitCodes: z.array(z.number().int().min(-255).max(255)).max(64).default([]),
    /** Log lines that make a failure fatal (matched against each node's log tail). */
    fatalLogPatterns: patternList.default(["SyntaxError", "IndentationError", "ModuleNotFoundError", "ImportError"]),
    /**
     * Log lines that make a failure retryable even when its exit code is listed as fatal: faults
     * of the machine or the network, not of the program. NCCL only by its transient errors (system,
     * remote, CUDA, internal; watchdog timeouts; aborted communicators; IB completions): a job run
     * with NCCL_DEBUG=INFO logs "NCCL" on every line, and ncclInvalidUsage is a bug to fail on.
     */
    retryableLogPatterns: patternList.default([
      "CUDA error",
      "ECC error",
      "NCCL error.*(unhandled system error|remote process exited|network error|unhandled cuda error|internal check failed)",
      "nccl(SystemError|RemoteError|UnhandledCudaError|InternalError)",
      "Watchdog caught collective operation timeout",
      "NCCL communicator was aborted",
      "NET/IB.*(completion.*with error|Got async event)",
      "Connection reset by peer",
      "Connection closed by (remote )?peer",
    ]),
  })
  .strict();
export type RetryPolicy = z.infer<typeof retryPolicySchema>;
export const DEFAULT_RETRY_POLICY = retryPolicySchema.parse({});

/** Checkpoints: where the script writes them (on the rank-0 node) and how many to keep. */
export const checkpointPolicySchema = z
  .object({
    /** Default: <workRoot>/jobs/<jobId>/checkpoints on each node. */
    dir: absolutePathSchema.optional(),
    keepLast: z.number().int().min(1).max(1000).optional(),
    keepBest: z
      .object({
        count: z.number().int().min(1).max(100),
        metric: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]{0,63}$/),
        mode: z.enum(["min", "max"]).default("min"),
      })
      .strict()
      .optional(),
    /**
     * Copy every complete checkpoint to an object store (credentials registered under this name at
     * /v1/storage-credentials), so a retry can resume on any node, even when the checkpoint's node is gone.
     */
    storage: z
      .object({
        credential: nameSchema,
        prefix: z
          .string()
          .regex(/^([A-Za-z0-9._-]+\/)*$/, "must be empty or segments of letters, digits, '.', '_', '-' each ending in '/'")
          .default(""),
      })
      .strict()
      .optional(),
    /** Fallback for scripts that don't announce checkpoints: entries of `dir` whose names match. */
    scanPattern: z
      .string()
      .regex(/^[A-Za-z0-9._*?-]{1,64}$/, "must be a simple glob of letters, digits, '.', '_', '-', '*', '?'")
      .optional(),
  })
  .strict();
export type CheckpointPolicy = z.infer<typeof checkpointPolicySchema>;
export const DEFAULT_CHECKPOINT_POLICY = checkpointPolicySchema.parse({});

/** No progress for `stallSeconds` → alert, or restart from the latest checkpoint. */
export const hangPolicySchema = z
  .object({
    stallSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 86_400),
    action: z.enum(["alert", "restart"]).default("alert"),
  })
  .strict();
export type HangPolicy = z.infer<typeof hangPolicySchema>;

/** Horovod: launcher form and optional Horovod Elastic bounds (in processes). */
export const horovodOptionsSchema = z
  .object({
    /** horovodrun (Gloo) or mpirun (the job's command runs as MPI ranks: mpi4py, or Horovod built with MPI). */
    launcher: z.enum(["horovodrun", "mpirun"], { error: "must be horovodrun or mpirun" }).default("horovodrun"),
    /** Horovod Elastic: horovodrun --min-np/--max-np with a host discovery script. */
    elastic: z
      .object({ minNp: z.number().int().min(1).max(16_384), maxNp: z.number().int().min(1).max(16_384) })
      .strict()
      .optional(),
  })
  .strict();
export type HorovodOptions = z.infer<typeof horovodOptionsSchema>;

/** TensorFlow MultiWorkerMirroredStrategy: with `chief`, rank 0 is the chief and the others are workers. */
export const tensorflowOptionsSchema = z.object({ chief: z.boolean().default(false) }).strict();
export type TensorflowOptions = z.infer<typeof tensorflowOptionsSchema>;

interface FrameworkOptionsView {
  framework: Framework;
  resources: {
    nodes: number;
    gpusPerNode: number;
    gpuType?: string | undefined;
    minNodes?: number | undefined;
    maxNodes?: number | undefined;
  };
  pytorch: { rendezvous: "static" | "c10d"; maxRestarts?: number | undefined };
  horovod?: HorovodOptions | undefined;
  tensorflow?: TensorflowOptions | undefined;
}

/** Options that only make sense for one framework, and elastic bounds that must hold together. */
function refineFrameworkOptions(spec: FrameworkOptionsView, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const { framework, resources } = spec;
  if (spec.horovod && framework !== "horovod")
    issue(["horovod"], `horovod options are only for framework "horovod" (this job is ${framework})`);
  if (spec.tensorflow && framework !== "tensorflow")
    issue(["tensorflow"], `tensorflow options are only for framework "tensorflow" (this job is ${framework})`);
  if (framework !== "pytorch" && (spec.pytorch.rendezvous !== "static" || spec.pytorch.maxRestarts !== undefined))
    issue(["pytorch"], `pytorch options are only for framework "pytorch" (this job is ${framework})`);

  const elastic = resources.minNodes !== undefined || resources.maxNodes !== undefined;
  if (elastic) {
    if (framework === "horovod")
      issue(
        ["resources"],
        "Horovod Elastic bounds are processes: use horovod.elastic.minNp/maxNp, not resources.minNodes/maxNodes",
      );
    else if (framework === "tensorflow")
      issue(["resources"], "TensorFlow jobs are not elastic: remove resources.minNodes/maxNodes");
    else if (framework === "command") issue(["resources"], "command jobs are not elastic: remove resources.minNodes/maxNodes");
    else if (spec.pytorch.rendezvous !== "c10d")
      issue(["pytorch", "rendezvous"], 'elastic jobs (resources.minNodes/maxNodes) need "rendezvous": "c10d"');
    const min = resources.minNodes ?? resources.nodes;
    const max = resources.maxNodes ?? resources.nodes;
    if (!(min <= resources.nodes && resources.nodes <= max))
      issue(
        ["resources"],
        `elastic bounds must satisfy minNodes <= nodes <= maxNodes (got ${min} <= ${resources.nodes} <= ${max})`,
      );
  }
  const he = spec.horovod?.elastic;
  if (he && framework === "horovod") {
    const np = resources.nodes * resources.gpusPerNode;
    if (!(he.minNp <= np && np <= he.maxNp))
      issue(
        ["horovod", "elastic"],
        `elastic bounds must satisfy minNp <= nodes x gpusPerNode <= maxNp (got ${he.minNp} <= ${np} <= ${he.maxNp})`,
      );
    if (spec.horovod?.launcher === "mpirun") issue(["horovod", "launcher"], "Horovod Elastic runs under horovodrun, not mpirun");
  }
}

/**
 * "checkpoint": stopped at the first monitor check that finds a checkpoint newer than the
 * preemption request, or once `graceSeconds` pass without one; "immediate": stopped at once (the
 * work since its latest checkpoint is lost).
 */
export const preemptionPolicySchema = z
  .object({
    mode: z.enum(["checkpoint", "immediate"], { error: 'must be "checkpoint" or "immediate"' }).default("checkpoint"),
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(300),
  })
  .strict();
export type PreemptionPolicy = z.infer<typeof preemptionPolicySchema>;
export const DEFAULT_PREEMPTION_POLICY = preemptionPolicySchema.parse({});

/** A job's place in its cluster's queue: higher first. Also a team's default (PUT /v1/teams/{team}/default-priority). */
export const prioritySchema = z.number().int().min(-1000).max(1000);

export const jobSpecSchema = z
  .object({
    name: nameSchema,
    project: nameSchema.default("default"),
    framework: frameworkSchema,
    /** Cluster name (or id) the job runs on. */
    cluster: z.string().min(1).max(64),
    /**
     * Queue order on the cluster: higher first, then older first. When absent the job gets its
     * team's default priority (PUT /v1/teams/{team}/default-priority), else 0.
     */
    priority: prioritySchema.optional(),
    resources: z
      .object({
        nodes: z.number().int().min(1).max(256),
        /** Ranks per node; each takes one GPU (on CPU-only nodes, one process slot). */
        gpusPerNode: z.number().int().min(1).max(64),
        /** Run only on nodes declared with this gpuType (compared without case), e.g. "h100". */
        gpuType: nameSchema.optional(),
        /** Elastic PyTorch (c10d): torchrun --nnodes=MIN:MAX; the job goes on while at least minNodes remain. */
        minNodes: z.number().int().min(1).max(256).optional(),
        maxNodes: z.number().int().min(1).max(256).optional(),
      })
      .strict(),
    command: z.array(z.string().max(4096)).min(1).max(256),
    files: z
      .record(z.string(), z.string())
      .default({})
      .superRefine((files, ctx) => {
        for (const path of Object.keys(files)) {
          const r = relativePathSchema.safeParse(path);
          if (!r.success) ctx.addIssue({ code: "custom", path: [path], message: `'${path}': ${r.error.issues[0]?.message}` });
        }
      })
      .refine((f) => Object.values(f).reduce((n, s) => n + Buffer.byteLength(s), 0) <= MAX_INLINE_FILES_BYTES, {
        message: `inline files are limited to ${MAX_INLINE_FILES_BYTES} bytes in total`,
      })
      .refine((f) => Object.keys(f).length <= 64, { message: "at most 64 inline files" }),
    /** Code already present on the nodes; the command runs there. Default: the attempt directory. */
    workdir: absolutePathSchema.nullable().default(null),
    env: envSchema.default({}),
    pytorch: z
      .object({
        rendezvous: z.enum(["static", "c10d"]).default("static"),
        /** torchrun --max_restarts: 0 by default, 3 for elastic jobs. */
        maxRestarts: z.number().int().min(0).max(100).optional(),
      })
      .strict()
      .default({ rendezvous: "static" }),
    horovod: horovodOptionsSchema.optional(),
    tensorflow: tensorflowOptionsSchema.optional(),
    retry: retryPolicySchema.default(DEFAULT_RETRY_POLICY),
    checkpoints: checkpointPolicySchema.default(DEFAULT_CHECKPOINT_POLICY),
    hang: hangPolicySchema.optional(),
    /**
     * The job may be stopped to make room for a queued job of strictly higher priority on its
     * cluster; it goes back to QUEUED and resumes from its latest checkpoint (docs/architecture.md).
     */
    preemptible: z.boolean().optional(),
    /** How a preemptible job is stopped: after its next checkpoint (within graceSeconds), or at once. */
    preemption: preemptionPolicySchema.optional(),
    /** Stop the job (STOPPED_BUDGET) once its own cost reaches this many USD. */
    maxCostUsd: z.number().finite().positive("must be > 0").max(1_000_000_000).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const first = spec.command[0];
    if (first !== undefined && first.length === 0)
      ctx.addIssue({ code: "custom", path: ["command", 0], message: "the program name must not be empty" });
    for (const k of Object.keys(spec.files)) {
      if (RESERVED_FILES.has(k) || RESERVED_FILES.has(k.split("/")[0] ?? ""))
        ctx.addIssue({ code: "custom", path: ["files", k], message: `'${k}' is a reserved file name in the attempt directory` });
    }
    refineFrameworkOptions(spec, ctx);
    if (spec.preemption && spec.preemptible !== true)
      ctx.addIssue({ code: "custom", path: ["preemption"], message: 'preemption options need "preemptible": true' });
  })
  // Shown in the OpenAPI document and its reference page (and tried by Schemathesis).
  .meta({
    examples: [
      {
        name: "mlp-ddp",
        project: "demo",
        framework: "pytorch",
        cluster: "gpu-a",
        resources: { nodes: 2, gpusPerNode: 2 },
        command: ["python3", "train.py", "--steps", "40"],
        files: { "train.py": "print('hello from every rank')\n" },
        retry: { maxRetries: 2 },
        checkpoints: { keepLast: 2 },
      },
    ],
  });
export type JobSpec = z.infer<typeof jobSpecSchema>;
export type JobSpecInput = z.input<typeof jobSpecSchema>;

/** Files Trainyard itself writes in each attempt directory. */
export const RESERVED_FILES = new Set([
  "launch.sh",
  "env",
  "pid",
  "exit_code",
  "output.log",
  "metrics.jsonl",
  // Horovod/MPI attempts: rank wrapper, host lists, and the per-attempt ssh directory.
  "rank.sh",
  "hostfile",
  "appfile",
  "discover_hosts.sh",
  "hosts.current",
  "ssh",
]);

export const JOB_STATUSES = [
  "PENDING",
  "QUEUED",
  "LAUNCHING",
  "RUNNING",
  "RETRYING",
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "STOPPED_BUDGET",
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const jobStatusSchema = z.enum(JOB_STATUSES);

export type TerminalStatus = "SUCCEEDED" | "FAILED" | "CANCELLED" | "STOPPED_BUDGET";
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set<TerminalStatus>([
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "STOPPED_BUDGET",
]);
/** Statuses in which an attempt may hold processes on nodes (quota usage, stop requests, node drains). */
export const ACTIVE_STATUSES: readonly JobStatus[] = ["LAUNCHING", "RUNNING"];
/** Waiting to (re)start: the scheduler's queue of a cluster. */
export const WAITING_STATUSES: readonly JobStatus[] = ["QUEUED", "RETRYING"];
/** Nothing of the job runs: a cancel (or a budget stop) ends it at once. */
export const NOT_STARTED_STATUSES: readonly JobStatus[] = ["PENDING", "QUEUED", "RETRYING"];
/** Statuses in which a job spends money, or will again soon (a retry): priced on every cost sweep. */
export const COSTED_STATUSES: readonly JobStatus[] = ["LAUNCHING", "RUNNING", "RETRYING"];

/** Every allowed status change; repositories refuse anything else. */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  PENDING: ["QUEUED", "CANCELLED", "FAILED"],
  QUEUED: ["LAUNCHING", "CANCELLED", "FAILED", "STOPPED_BUDGET"],
  LAUNCHING: ["RUNNING", "QUEUED", "RETRYING", "FAILED", "CANCELLED", "STOPPED_BUDGET"],
  // RUNNING -> QUEUED: preempted, back in the queue to resume later (not a failure).
  RUNNING: ["SUCCEEDED", "FAILED", "RETRYING", "QUEUED", "CANCELLED", "STOPPED_BUDGET"],
  RETRYING: ["LAUNCHING", "FAILED", "CANCELLED", "STOPPED_BUDGET"],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
  STOPPED_BUDGET: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export const NODE_STATES = ["pending", "starting", "running", "exited", "lost", "unreachable", "stopped"] as const;
export type NodeState = (typeof NODE_STATES)[number];

export interface Progress {
  step: number;
  totalSteps?: number;
  loss?: number;
  /** 0..1 when totalSteps is known. */
  ratio?: number;
  updatedAt: string;
}

export interface AttemptNode {
  name: string;
  host: string;
  nodeRank: number;
  gpuIndices: number[];
  ports: number[];
  state: NodeState;
  exitCode?: number;
  pgid?: number;
  missedChecks: number;
  lastSeenAt?: string;
  logTail?: string;
}

/**
 * "retry" stops the gang and starts the next attempt from the latest checkpoint; "preempt" stops it
 * to make room for a higher-priority job and puts it back in the queue (QUEUED).
 */
export const STOP_KINDS = ["cancel", "fail", "budget", "retry", "preempt"] as const;
export type StopKind = (typeof STOP_KINDS)[number];
export interface StopRequest {
  kind: StopKind;
  reason: string;
  requestedAt: string;
  /** Failure details when kind is "fail". */
  node?: string;
  rank?: number;
  exitCode?: number;
}

/** How an attempt ended: the job's status then, or PREEMPTED (stopped for a higher-priority job; not a failure). */
export const JOB_ATTEMPT_OUTCOMES = [...JOB_STATUSES, "PREEMPTED"] as const;
export type AttemptOutcomeStatus = (typeof JOB_ATTEMPT_OUTCOMES)[number];

/**
 * Which failure this attempt's would be, for the retry policy: preempted attempts are not failures,
 * and launches abandoned by a lost launcher never ran, so neither uses any of maxRetries.
 */
export function failureNumber(
  attempts: ReadonlyArray<{ number: number; outcome?: string; startedAt?: unknown }>,
  attemptNumber: number,
): number {
  return attempts.filter(
    (a) => a.number <= attemptNumber && a.outcome !== "PREEMPTED" && (a.number === attemptNumber || Boolean(a.startedAt)),
  ).length;
}

/** A pending checkpoint-aware preemption: the attempt stops at its next checkpoint, or at `deadline`. */
export interface PreemptRequest {
  /** The queued job it makes room for. */
  byJobId: string;
  byJobName: string;
  requestedAt: string;
  deadline: string;
}

export interface Attempt {
  id: string;
  number: number;
  nodes: AttemptNode[];
  masterAddr: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  outcome?: AttemptOutcomeStatus;
  reason?: string;
  /** When hang detection first saw this attempt stalled. */
  stalledAt?: string;
  /** When this attempt's idle-GPU alert went out. */
  gpuIdleAlertedAt?: string;
  /** The node blamed for this attempt's failure (avoided by the next attempt when possible). */
  failedNode?: string;
}

export interface JobView {
  id: string;
  team: string;
  name: string;
  project: string;
  framework: Framework;
  clusterId: string;
  clusterName: string;
  status: JobStatus;
  attempts: Attempt[];
  progress?: Progress;
  waitingReason?: string;
  /** 1-based place in its cluster's queue (QUEUED or RETRYING jobs only; single-job reads only). */
  queuePosition?: number;
  /** When a RETRYING job's next attempt is due. */
  retryAt?: string;
  failure?: { reason: string; node?: string; rank?: number; exitCode?: number };
  stopRequest?: StopRequest;
  /** Set while the job waits to be preempted at its next checkpoint. */
  preemptRequest?: PreemptRequest;
  /** Priced by the cost service (absent until the first pricing). */
  cost?: JobCost;
  spec: Omit<JobSpec, "files"> & { files: string[] };
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  endedAt?: string;
}
