import { Router } from "express";
import type { ApiDeps } from "../context";
import { teamOf } from "../http/locals";
import { deleteStorageCredentials, listStorageCredentials, registerStorageCredentials } from "../usecases/storage";

/** Mounted at /v1/storage-credentials. */
export function storageRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post("/", async (req, res) => {
    res.status(201).json(await registerStorageCredentials(deps, teamOf(res), req.body));
  });
  r.get("/", async (_req, res) => {
    res.json(await listStorageCredentials(deps, teamOf(res)));
  });
  r.delete("/:name", async (req, res) => {
    await deleteStorageCredentials(deps, teamOf(res), req.params.name);
    res.status(204).end();
  });
  return r;
}
