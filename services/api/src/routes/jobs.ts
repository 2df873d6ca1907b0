import { jobSpecSchema } from "@trainyard/common";
import { z } from "zod";
import type { ApiDeps } from "../context";
import { parseIdempotencyKey } from "../http/idempotency";
import { type ApiRoute, defineRoute } from "../http/route-table";
import { cursorPageOf, idView, itemsOf, jobDetailSchema, jobRefSchema, jobViewSchema, objectWith } from "../http/schemas";
import { deleteCheckpoint, latestCheckpoint, listCheckpoints } from "../usecases/checkpoints";
import { cancelJob, dryRunJob, getJob, listJobs, listJobsQuerySchema, resubmitJob, submitJob } from "../usecases/jobs";
import { logsQuerySchema, readJobLogs, resolveLogTarget } from "../usecases/logs";
import { jobMetrics, jobProgress, metricsQuerySchema, progressQuerySchema } from "../usecases/telemetry";
import { streamLogs } from "./sse";

export function jobRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    defineRoute({
      method: "post",
      path: "/v1/jobs",
      operationId: "submitJob",
      summary: "Submit a job (202; with Idempotency-Key a repeat answers 200 with the first job)",
      tag: "jobs",
      role: "member",
      scope: "team",
      body: jobSpecSchema,
      ok: {
        status: 202,
        description: "accepted and queued (200: a repeat of an Idempotency-Key)",
        schema: jobRefSchema,
        alsoStatus: [200],
        names: "id",
      },
      audit: "job.submit",
      async handle({ req, res, team, body }) {
        const key = parseIdempotencyKey(req.headers["idempotency-key"]);
        const result = await submitJob(deps, team, body, key);
        if (!result.created) res.locals.replyStatus = 200;
        return { id: result.id, status: result.status };
      },
    }),
    defineRoute({
      method: "post",
      path: "/v1/jobs/dry-run",
      operationId: "dryRunJob",
      summary: "Validate a job and show its per-node launch plan; runs nothing",
      tag: "jobs",
      role: "member",
      scope: "team",
      body: jobSpecSchema,
      ok: { status: 200, description: "the plan", schema: objectWith({ valid: z.literal(true), nodes: z.array(z.unknown()) }) },
      handle: ({ team, body }) => dryRunJob(deps, team, body),
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs",
      operationId: "listJobs",
      summary: "The team's jobs, newest first (keyset pages: follow `nextCursor`)",
      tag: "jobs",
      role: "viewer",
      scope: "team",
      query: listJobsQuerySchema,
      ok: { status: 200, description: "a page of jobs", schema: cursorPageOf(jobViewSchema) },
      handle: ({ team, query }) => listJobs(deps, team, query),
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}",
      operationId: "getJob",
      summary: "One job with its attempts, progress and cost",
      tag: "jobs",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "the job (a waiting one with queuePosition and waitingReason)", schema: jobDetailSchema },
      handle: ({ team, params }) => getJob(deps, team, params.id!),
    }),
    defineRoute({
      method: "post",
      path: "/v1/jobs/{id}/cancel",
      operationId: "cancelJob",
      summary: "Cancel a job: every rank is stopped (TERM, then KILL) and checked gone",
      tag: "jobs",
      role: "member",
      scope: "team",
      ok: { status: 202, description: "cancellation under way", schema: jobViewSchema },
      audit: "job.cancel",
      handle: ({ team, params }) => cancelJob(deps, team, params.id!),
    }),
    defineRoute({
      method: "post",
      path: "/v1/jobs/{id}/resubmit",
      operationId: "resubmitJob",
      summary: "Submit a new job from this job's spec (e.g. to run a failed or cancelled job again)",
      tag: "jobs",
      role: "member",
      scope: "team",
      ok: { status: 202, description: "the new job, queued", schema: jobRefSchema, names: "id" },
      audit: "job.resubmit",
      async handle({ team, params }) {
        const result = await resubmitJob(deps, team, params.id!);
        return { id: result.id, status: result.status };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}/logs",
      operationId: "getJobLogs",
      summary: "A node's log (plain text from a byte offset), or followed as Server-Sent Events",
      tag: "jobs",
      role: "viewer",
      scope: "team",
      query: logsQuerySchema,
      ok: { status: 200, description: "log bytes (text/plain) or an event stream", contentType: "text/plain" },
      async handle({ req, res, team, params, query: q }) {
        if (q.follow) {
          const target = await resolveLogTarget(deps, team, params.id!, q.node);
          await streamLogs(deps, req, res, target, q.from, q.maxBytes);
          return undefined;
        }
        const chunk = await readJobLogs(deps, team, params.id!, q);
        res
          .status(200)
          .set({
            "Content-Type": "text/plain; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Log-Next-Offset": String(chunk.nextOffset),
            "X-Log-Node": chunk.node,
            "X-Log-Attempt": chunk.attemptId,
          })
          .send(chunk.data);
        return undefined;
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}/metrics",
      operationId: "getJobMetrics",
      summary: "The job's GPU and process samples (utilisation, memory, temperature, power; CPU and memory), oldest first",
      tag: "jobs",
      role: "viewer",
      scope: "team",
      query: metricsQuerySchema,
      ok: {
        status: 200,
        description: "samples and each node's latest",
        schema: objectWith({ items: z.array(z.unknown()), latest: z.record(z.string(), z.unknown()) }),
      },
      handle: ({ team, params, query }) => jobMetrics(deps, team, params.id!, query),
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}/progress",
      operationId: "getJobProgress",
      summary: "The job's progress history (step, loss), oldest first; kept after the job ends",
      tag: "jobs",
      role: "viewer",
      scope: "team",
      query: progressQuerySchema,
      ok: { status: 200, description: "progress samples", schema: itemsOf(z.unknown()) },
      handle: ({ team, params, query }) => jobProgress(deps, team, params.id!, query),
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}/checkpoints",
      operationId: "listCheckpoints",
      summary: "The job's checkpoints, newest first",
      tag: "checkpoints",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "checkpoints", schema: itemsOf(idView) },
      handle: ({ team, params }) => listCheckpoints(deps, team, params.id!),
    }),
    defineRoute({
      method: "get",
      path: "/v1/jobs/{id}/checkpoints/latest",
      operationId: "latestCheckpoint",
      summary: "The latest complete checkpoint (the one a retry resumes from)",
      tag: "checkpoints",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "the checkpoint", schema: idView },
      handle: ({ team, params }) => latestCheckpoint(deps, team, params.id!),
    }),
    defineRoute({
      method: "delete",
      path: "/v1/jobs/{id}/checkpoints/{cid}",
      operationId: "deleteCheckpoint",
      summary: "Delete a checkpoint (two-phase); the latest resumable one is refused with 409",
      tag: "checkpoints",
      role: "member",
      scope: "team",
      ok: { status: 204, description: "deleted" },
      audit: "checkpoint.delete",
      async handle({ team, params }) {
        await deleteCheckpoint(deps, team, params.id!, params.cid!);
        return null;
      },
    }),
  ];
}
