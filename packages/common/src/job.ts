import { z } from "zod";
import { absolutePathSchema, envSchema, nameSchema, relativePathSchema } from "./names";

/** Frameworks this build can really launch. Others are refused with a 400, not accepted and faked. */
export const FRAMEWORKS = ["pytorch"] as const;
export const frameworkSchema = z.enum(FRAMEWORKS, {
  error: (issue) => `unknown framework ${JSON.stringify(issue.input)}; supported: ${FRAMEWORKS.join(", ")}`,
});
export type Framework = z.infer<typeof frameworkSchema>;

export const MAX_INLINE_FILES_BYTES = 1024 * 1024;

export const jobSpecSchema = z
  .object({
    name: nameSchema,
    project: nameSchema.default("default"),
    framework: frameworkSchema,
    /** Cluster name (or id) the job runs on. */
    cluster: z.string().min(1).max(64),
    resources: z
      .object({
        nodes: z.number().int().min(1).max(256),
        /** Ranks per node; each takes one GPU (on CPU-only nodes, one process slot). */
        gpusPerNode: z.number().int().min(1).max(64),
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
      .object({ rendezvous: z.enum(["static", "c10d"]).default("static") })
      .strict()
      .default({ rendezvous: "static" }),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const first = spec.command[0];
    if (first !== undefined && first.length === 0)
      ctx.addIssue({ code: "custom", path: ["command", 0], message: "the program name must not be empty" });
    for (const k of Object.keys(spec.files)) {
      if (RESERVED_FILES.has(k))
        ctx.addIssue({ code: "custom", path: ["files", k], message: `'${k}' is a reserved file name in the attempt directory` });
    }
  });
export type JobSpec = z.infer<typeof jobSpecSchema>;
export type JobSpecInput = z.input<typeof jobSpecSchema>;

/** Files Trainyard itself writes in each attempt directory. */
export const RESERVED_FILES = new Set(["launch.sh", "env", "pid", "exit_code", "output.log", "metrics.jsonl"]);

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

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"]);
/** Statuses in which an attempt may hold processes on nodes. */
export const ACTIVE_STATUSES: ReadonlySet<JobStatus> = new Set(["LAUNCHING", "RUNNING"]);

/** Every allowed status change; repositories refuse anything else. */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  PENDING: ["QUEUED", "CANCELLED", "FAILED"],
  QUEUED: ["LAUNCHING", "CANCELLED", "FAILED", "STOPPED_BUDGET"],
  LAUNCHING: ["RUNNING", "QUEUED", "RETRYING", "FAILED", "CANCELLED", "STOPPED_BUDGET"],
  RUNNING: ["SUCCEEDED", "FAILED", "RETRYING", "CANCELLED", "STOPPED_BUDGET"],
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

export type StopKind = "cancel" | "fail" | "budget";
export interface StopRequest {
  kind: StopKind;
  reason: string;
  requestedAt: string;
  /** Failure details when kind is "fail". */
  node?: string;
  rank?: number;
  exitCode?: number;
}

export interface Attempt {
  id: string;
  number: number;
  nodes: AttemptNode[];
  masterAddr: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  outcome?: JobStatus;
  reason?: string;
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
  failure?: { reason: string; node?: string; rank?: number; exitCode?: number };
  stopRequest?: StopRequest;
  spec: Omit<JobSpec, "files"> & { files: string[] };
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  endedAt?: string;
}
