import { Router } from "express";
import type { ApiDeps } from "../context";
import { teamOf } from "../http/locals";
import { deleteCheckpoint, latestCheckpoint, listCheckpoints } from "../usecases/checkpoints";

/** Mounted at /v1/jobs/:id/checkpoints. */
export function checkpointRoutes(deps: ApiDeps): Router {
  const r = Router({ mergeParams: true });
  const jobId = (params: Record<string, string>) => params.id ?? "";
  r.get("/", async (req, res) => {
    res.json(await listCheckpoints(deps, teamOf(res), jobId(req.params)));
  });
  r.get("/latest", async (req, res) => {
    res.json(await latestCheckpoint(deps, teamOf(res), jobId(req.params)));
  });
  r.delete("/:cid", async (req, res) => {
    await deleteCheckpoint(deps, teamOf(res), jobId(req.params), (req.params as Record<string, string>).cid ?? "");
    res.status(204).end();
  });
  return r;
}
