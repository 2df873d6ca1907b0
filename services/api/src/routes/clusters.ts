import { Router } from "express";
import type { ApiDeps } from "../context";
import { teamOf } from "../http/locals";
import { checkCluster, getCluster, listClusters, registerCluster } from "../usecases/clusters";

export function clusterRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post("/", async (req, res) => {
    res.status(201).json(await registerCluster(deps, teamOf(res), req.body));
  });
  r.get("/", async (_req, res) => {
    res.json({ items: await listClusters(deps, teamOf(res)) });
  });
  r.get("/:id", async (req, res) => {
    res.json(await getCluster(deps, teamOf(res), req.params.id));
  });
  r.post("/:id/check", async (req, res) => {
    res.json(await checkCluster(deps, teamOf(res), req.params.id));
  });
  return r;
}
