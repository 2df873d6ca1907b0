import { Router } from "express";
import type { ApiDeps } from "../context";
import { teamOf } from "../http/locals";
import {
  createAlertChannel,
  deleteAlertChannel,
  getAlertChannel,
  listAlertChannels,
  listAlertDeliveries,
  updateAlertChannel,
} from "../usecases/alerting";

/** /v1/alert-channels CRUD. */
export function alertChannelRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post("/", async (req, res) => {
    res.status(201).json(await createAlertChannel(deps, teamOf(res), req.body));
  });
  r.get("/", async (_req, res) => {
    res.json({ items: await listAlertChannels(deps, teamOf(res)) });
  });
  r.get("/:id", async (req, res) => {
    res.json(await getAlertChannel(deps, teamOf(res), req.params.id));
  });
  r.put("/:id", async (req, res) => {
    res.json(await updateAlertChannel(deps, teamOf(res), req.params.id, req.body));
  });
  r.delete("/:id", async (req, res) => {
    await deleteAlertChannel(deps, teamOf(res), req.params.id);
    res.status(204).end();
  });
  return r;
}

/** GET /v1/alerts: the delivery log. */
export function alertLogRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get("/", async (req, res) => {
    res.json(await listAlertDeliveries(deps, teamOf(res), req.query));
  });
  return r;
}
