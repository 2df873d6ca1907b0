import {
  badRequest,
  type ClusterSpec,
  conflict,
  JOB_STATUSES,
  type JobSpec,
  type JobStatus,
  type JobView,
  type jobSpecSchema,
  NOT_STARTED_STATUSES,
  nameSchema,
  TERMINAL_STATUSES,
  UserError,
} from "@trainyard/common";
import { explainWait, finishAttempt, requestSchedulingPass, withDefaultPriority } from "@trainyard/core";
import { type ClusterDoc, type JobDoc, type JobsPageKey, jobView } from "@trainyard/db";
import { planJob, portsPerNode, redactEnv, renderPlanText, shellJoin, validateTopology } from "@trainyard/frameworks";
import { isRedisUnavailableError } from "@trainyard/runtime";
import { Types } from "mongoose";
import { z } from "zod";
import type { ApiDeps } from "../context";
import { assertBudgetAllowsNewJob } from "./budgets";

/** A job as the API shows it: secret-looking env values of the spec redacted, as in a dry run. */
export function publicJobView(doc: JobDoc): JobView {
  const view = jobView(doc);
  return { ...view, spec: { ...view.spec, env: redactEnv(view.spec.env ?? {}) } };
}

/** A team's cluster for a job spec; an unknown cluster is a bad request, not a missing resource. */
async function resolveCluster(deps: ApiDeps, team: string, name: string): Promise<ClusterDoc> {
  try {
    return await deps.config.get(`cluster:${team}:${name}`, () => deps.repos.clusters.getForTeam(team, name));
  } catch (err) {
    if (err instanceof UserError && err.status === 404) throw badRequest(`cluster '${name}' not found`);
    throw err;
  }
}

/** Check the parsed spec against the cluster's shape; every reason it can never run is a 400. */
async function validateJob(
  deps: ApiDeps,
  team: string,
  spec: z.output<typeof jobSpecSchema>,
): Promise<{ spec: JobSpec; cluster: ClusterDoc }> {
  const cluster = await resolveCluster(deps, team, spec.cluster);
  const issues = validateTopology(spec, { nodes: cluster.nodes as ClusterSpec["nodes"], ports: cluster.ports });
  if (issues.length) throw badRequest(issues.map((i) => i.message).join("; "), issues);
  const storage = spec.checkpoints.storage;
  if (storage && !(await deps.repos.storageCredentials.byName(team, storage.credential))) {
    throw badRequest(
      `checkpoints.storage.credential: no storage credentials named '${storage.credential}' (register them at /v1/storage-credentials)`,
    );
  }
  return { spec, cluster };
}

/**
 * A stored job enters its cluster's queue: a job still PENDING (an earlier request died before
 * queueing it) moves to QUEUED, and a QUEUED one asks for a scheduling pass of its cluster; a lost
 * message is caught by the launcher's sweep of QUEUED jobs.
 */
async function enqueue(deps: ApiDeps, job: JobDoc): Promise<JobStatus> {
  let status = job.status;
  if (status === "PENDING") {
    try {
      const queued = await deps.repos.jobs.queue(job._id);
      status = queued?.status ?? (await deps.repos.jobs.byId(job._id))?.status ?? status;
    } catch (err) {
      // The job is stored: Redis (its write lock) going away now must not turn an accepted job into
      // a 503 the client would resubmit. It stays PENDING; the launcher's reconciler queues it.
      if (!isRedisUnavailableError(err)) throw err;
      deps.logger.warn(
        { jobId: job._id.toString(), err: (err as Error).message },
        "job stored but not queued yet (Redis unavailable)",
      );
      return status;
    }
  }
  if (status === "QUEUED") {
    await requestSchedulingPass(deps.bus, job.clusterId).catch((err: Error) =>
      deps.logger.warn(
        { jobId: job._id.toString(), err: err.message },
        "could not request a scheduling pass; the launcher's sweep will pick the job up",
      ),
    );
  }
  return status;
}

export interface SubmitResult {
  created: boolean;
  id: string;
  status: JobStatus;
}

/**
 * Accept a job: fill in the team's default priority if it has none, validate it against its
 * cluster, store it in its cluster's queue (QUEUED: one insert, no second write) and ask for a
 * scheduling pass. With an Idempotency-Key, a repeat returns the first job; the same key with a
 * different spec is a 409.
 */
export async function submitJob(deps: ApiDeps, team: string, input: JobSpec, idempotencyKey?: string): Promise<SubmitResult> {
  // A job without a priority gets its team's default; the stored spec shows the one it got.
  const { spec, cluster } = await validateJob(
    deps,
    team,
    withDefaultPriority(input, await deps.config.get(`default-priority:${team}`, () => deps.repos.teams.defaultPriorityOf(team))),
  );
  // A team or project whose `stop` budget is exhausted takes no new jobs (402 naming the budget).
  await assertBudgetAllowsNewJob(deps, team, spec.project);
  const { job, created } = await deps.repos.jobs.create(
    {
      team,
      spec,
      clusterId: cluster._id,
      clusterName: cluster.name,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    },
    "QUEUED",
  );
  // A repeat finds the first job; a PENDING one (stored by an older API) is queued now.
  const status = created || job.status === "PENDING" ? await enqueue(deps, job) : job.status;
  if (created) deps.logger.info({ jobId: job._id.toString(), job: spec.name, cluster: cluster.name }, "job submitted");
  return { created, id: job._id.toString(), status };
}

/**
 * A new job from an earlier job's spec as it was stored (files and env included, priority as it
 * got it), submitted like any other: validated against the cluster as it is now, budget-checked,
 * queued. Only the new job's id and status come back, never the spec's secrets.
 */
export async function resubmitJob(deps: ApiDeps, team: string, id: string): Promise<SubmitResult> {
  const old = await deps.repos.jobs.getForTeam(team, id);
  const result = await submitJob(deps, team, old.spec);
  deps.logger.info({ jobId: result.id, from: id }, "job resubmitted");
  return result;
}

export interface DryRunNode {
  node: string;
  host: string;
  nodeRank: number;
  dir: string;
  workdir: string;
  /** Trainyard starts launch.sh here; false: the head's horovodrun/mpirun starts this node's ranks over SSH. */
  launches: boolean;
  argv: string[];
  command: string;
  env: Record<string, string>;
  files: string[];
  /** Files written when the attempt starts (the inter-node SSH key and known_hosts): named, never shown. */
  provisioned: string[];
}
export interface DryRunResult {
  valid: true;
  framework: string;
  rendezvous: string;
  masterAddr: string;
  masterPort: number;
  portsPerNode: number;
  elastic?: { min: number; max: number; unit: "nodes" | "processes" };
  interNodeSsh: boolean;
  nodes: DryRunNode[];
  /** The plan as text (secret-looking env values redacted), as the CLI shows it. */
  text: string;
}

/** Validate a job and show the launch plan it would get on an idle cluster. Runs nothing anywhere. */
export async function dryRunJob(deps: ApiDeps, team: string, input: JobSpec): Promise<DryRunResult> {
  const { spec, cluster } = await validateJob(deps, team, input);
  const { nodes: wanted, gpusPerNode } = spec.resources;
  const chosen = cluster.nodes.filter((n) => n.gpus >= gpusPerNode).slice(0, wanted);
  if (chosen.length < wanted) throw badRequest(`cluster '${cluster.name}' has too few nodes with ${gpusPerNode} GPUs`);
  const ports = Array.from({ length: portsPerNode(spec) }, (_, i) => cluster.ports.min + i);
  const plan = planJob({
    jobId: "dry-run-job",
    attemptId: "dry-run-attempt",
    attemptNumber: 1,
    spec,
    clusterEnv: cluster.env ?? {},
    clusterNccl: cluster.nccl,
    nodes: chosen.map((n) => ({
      name: n.name,
      host: n.host,
      port: n.port,
      user: n.user,
      workRoot: n.workRoot,
      gpuIndices: Array.from({ length: gpusPerNode }, (_, i) => i),
      ports,
      nccl: n.nccl,
    })),
  });
  return {
    valid: true,
    framework: plan.framework,
    rendezvous: plan.rendezvous,
    masterAddr: plan.masterAddr,
    masterPort: plan.masterPort,
    portsPerNode: plan.portsPerNode,
    ...(plan.elastic ? { elastic: plan.elastic } : {}),
    interNodeSsh: plan.interNodeSsh,
    nodes: plan.nodes.map((p) => ({
      node: p.node,
      host: p.host,
      nodeRank: p.nodeRank,
      dir: p.dir,
      workdir: p.workdir,
      launches: p.launches,
      argv: p.argv,
      command: shellJoin(p.argv),
      env: redactEnv(p.env),
      // Names only: the env file's content holds the unredacted values.
      files: Object.keys(p.files),
      provisioned: p.provisioned ?? [],
    })),
    text: renderPlanText(plan),
  };
}

/** GET /v1/jobs query: every value checked, every bad one a 400. */
export const listJobsQuerySchema = z.object({
  status: z.enum(JOB_STATUSES, { error: `must be one of ${JOB_STATUSES.join(", ")}` }).optional(),
  project: nameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .max(200)
    .refine((c) => decodeJobsCursor(c) !== undefined, { message: "not a cursor returned by GET /v1/jobs (nextCursor)" })
    .optional()
    .describe("`nextCursor` of the previous page; absent for the first page"),
});

/** Opaque keyset cursor: base64url of `<list page>_<createdAt ISO>_<job id>` (the last job of a page). */
export function encodeJobsCursor(key: JobsPageKey): string {
  return Buffer.from(`${key.page}_${new Date(key.createdAt).toISOString()}_${key.id.toString()}`).toString("base64url");
}

export function decodeJobsCursor(cursor: string): JobsPageKey | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  const m = /^(-?\d{1,15})_(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)_([0-9a-f]{24})$/.exec(
    Buffer.from(cursor, "base64url").toString(),
  );
  if (!m) return undefined;
  const createdAt = new Date(m[2] as string);
  if (Number.isNaN(createdAt.getTime())) return undefined;
  return { page: Number(m[1]), createdAt, id: new Types.ObjectId(m[3] as string) };
}

export async function listJobs(
  deps: ApiDeps,
  team: string,
  q: z.output<typeof listJobsQuerySchema>,
): Promise<{ items: JobView[]; limit: number; nextCursor?: string }> {
  const after = q.cursor ? decodeJobsCursor(q.cursor) : undefined;
  const { items, next } = await deps.repos.jobs.list(team, {
    limit: q.limit,
    ...(after ? { after } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.project ? { project: q.project } : {}),
  });
  return { items: items.map(publicJobView), limit: q.limit, ...(next ? { nextCursor: encodeJobsCursor(next) } : {}) };
}

/** One job; a waiting one (QUEUED/RETRYING) also shows its queuePosition and what it waits for. */
export async function getJob(deps: ApiDeps, team: string, id: string): Promise<JobView> {
  const doc = await deps.repos.jobs.getForTeam(team, id);
  const view = publicJobView(doc);
  if (doc.status !== "QUEUED" && doc.status !== "RETRYING") return view;
  const place = await deps.repos.jobs.queuePlace(doc);
  return { ...view, queuePosition: place.ahead + 1, waitingReason: explainWait(doc, place) };
}

/**
 * Cancel a job. Nothing runs yet (PENDING/QUEUED/RETRYING): it becomes CANCELLED at once, and any
 * reservation it held is freed. An attempt is active (LAUNCHING/RUNNING): a stop request is
 * recorded and the launcher is told, which stops every node and then finishes the job.
 */
export async function cancelJob(deps: ApiDeps, team: string, id: string): Promise<JobView> {
  const { repos, bus } = deps;
  // Each step is conditional on the status just read; when another actor moved the job meanwhile, look again.
  for (let tries = 0; tries < 10; tries++) {
    const job = await repos.jobs.getForTeam(team, id);
    if (TERMINAL_STATUSES.has(job.status)) throw conflict(`job is already ${job.status}`);

    if (NOT_STARTED_STATUSES.includes(job.status)) {
      // Nothing runs: it ends at once, and any reservation it held is freed for the jobs behind it.
      const done = await finishAttempt(deps, job, { status: "CANCELLED", from: [job.status], at: new Date() });
      if (!done) continue;
      return publicJobView(done);
    }

    const attemptId = job.currentAttemptId;
    if (!attemptId) continue;
    if (job.stopRequest?.kind) {
      // A stop is already under way (a cancel, a failure or a budget stop): it ends the job; repeat the nudge.
      await bus.send("control", { jobId: id, attemptId });
      return publicJobView(job);
    }
    const requested = await repos.jobs.requestStop(job._id, attemptId, {
      kind: "cancel",
      reason: "cancelled by user",
      requestedAt: new Date(),
    });
    if (!requested) continue;
    deps.logger.info({ jobId: id, attemptId }, "cancel requested");
    await bus.send("control", { jobId: id, attemptId });
    return publicJobView(requested);
  }
  throw conflict("the job kept changing state; try again");
}
