import { Router } from "express";
import type { ApiDeps } from "../context";
import { parseIdempotencyKey } from "../http/idempotency";
import { teamOf } from "../http/locals";
import { cancelJob, dryRunJob, getJob, listJobs, submitJob } from "../usecases/jobs";
import { logsQuerySchema, readJobLogs, resolveLogTarget } from "../usecases/logs";
import { streamLogs } from "./sse";

export function jobRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post("/", async (req, res) => {
    const key = parseIdempotencyKey(req.headers["idempotency-key"]);
    const result = await submitJob(deps, teamOf(res), req.body, key);
    res.status(result.created ? 202 : 200).json({ id: result.id, status: result.status });
  });
  r.post("/dry-run", async (req, res) => {
    res.json(await dryRunJob(deps, teamOf(res), req.body));
  });
  r.get("/", async (req, res) => {
    res.json(await listJobs(deps, teamOf(res), req.query));
  });
  r.get("/:id", async (req, res) => {
    res.json(await getJob(deps, teamOf(res), req.params.id));
  });
  r.post("/:id/cancel", async (req, res) => {
    res.status(202).json(await cancelJob(deps, teamOf(res), req.params.id));
  });
  r.get("/:id/logs", async (req, res) => {
    const q = logsQuerySchema.parse(req.query);
    if (q.follow) {
      const target = await resolveLogTarget(deps, teamOf(res), req.params.id, q.node);
      await streamLogs(deps, req, res, target, q.from, q.maxBytes);
      return;
    }
    const chunk = await readJobLogs(deps, teamOf(res), req.params.id, q);
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
  });
  return r;
}
