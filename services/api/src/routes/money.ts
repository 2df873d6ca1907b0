import { Router } from "express";
import type { ApiDeps } from "../context";
import { teamOf } from "../http/locals";
import { createBudget, deleteBudget, getBudget, listBudgets, updateBudget } from "../usecases/budgets";
import { costReport } from "../usecases/costs";
import { getPricing, putPricing } from "../usecases/pricing";

/** GET/PUT /v1/pricing (admin): the effective-dated rate card. */
export function pricingRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get("/", async (_req, res) => {
    res.json(await getPricing(deps));
  });
  r.put("/", async (req, res) => {
    res.json(await putPricing(deps, teamOf(res), req.body));
  });
  return r;
}

/** GET /v1/costs?groupBy=team|project|job&from=&to= */
export function costRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get("/", async (req, res) => {
    res.json(await costReport(deps, teamOf(res), req.query));
  });
  return r;
}

/** /v1/budgets CRUD. */
export function budgetRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post("/", async (req, res) => {
    res.status(201).json(await createBudget(deps, teamOf(res), req.body));
  });
  r.get("/", async (_req, res) => {
    res.json({ items: await listBudgets(deps, teamOf(res)) });
  });
  r.get("/:id", async (req, res) => {
    res.json(await getBudget(deps, teamOf(res), req.params.id));
  });
  r.put("/:id", async (req, res) => {
    res.json(await updateBudget(deps, teamOf(res), req.params.id, req.body));
  });
  r.delete("/:id", async (req, res) => {
    await deleteBudget(deps, teamOf(res), req.params.id);
    res.status(204).end();
  });
  return r;
}
