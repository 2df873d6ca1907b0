import { budgetInputSchema, rateCardInputSchema } from "@trainyard/common";
import { z } from "zod";
import type { ApiDeps } from "../context";
import { type ApiRoute, defineRoute } from "../http/route-table";
import { idView, itemsOf, objectWith } from "../http/schemas";
import { createBudget, deleteBudget, getBudget, listBudgets, updateBudget } from "../usecases/budgets";
import { costReport, costsQuerySchema } from "../usecases/costs";
import { getPricing, putPricing } from "../usecases/pricing";

export function moneyRoutes(deps: ApiDeps): ApiRoute[] {
  const budget = { tag: "budgets", scope: "team" } as const;
  return [
    defineRoute({
      method: "get",
      path: "/v1/pricing",
      operationId: "getPricing",
      summary: "The effective-dated rate card: current, scheduled and every version",
      tag: "pricing",
      role: "operator",
      scope: "platform",
      ok: { status: 200, description: "rate cards", schema: objectWith({ versions: z.array(z.unknown()) }) },
      handle: () => getPricing(deps),
    }),
    defineRoute({
      method: "put",
      path: "/v1/pricing",
      operationId: "putPricing",
      summary: "Add a rate card version, effective from a date (earlier usage keeps its price)",
      tag: "pricing",
      role: "operator",
      scope: "platform",
      body: rateCardInputSchema,
      ok: { status: 200, description: "the new version", schema: idView },
      audit: "pricing.update",
      handle: ({ team, body }) => putPricing(deps, team, body),
    }),
    defineRoute({
      method: "get",
      path: "/v1/costs",
      operationId: "costReport",
      summary: "Spend in a period grouped by team, project or job, from stored data",
      tag: "costs",
      role: "viewer",
      scope: "team",
      query: costsQuerySchema,
      ok: { status: 200, description: "cost groups", schema: objectWith({ totalUsd: z.number(), items: z.array(z.unknown()) }) },
      handle: ({ team, query }) => costReport(deps, team, query),
    }),
    defineRoute({
      ...budget,
      method: "post",
      path: "/v1/budgets",
      operationId: "createBudget",
      summary: "Create a budget for the team, a project or one job (alert or stop at the limit)",
      role: "admin",
      body: budgetInputSchema,
      ok: { status: 201, description: "created", schema: idView, names: "id" },
      audit: "budget.create",
      handle: ({ team, body }) => createBudget(deps, team, body),
    }),
    defineRoute({
      ...budget,
      method: "get",
      path: "/v1/budgets",
      operationId: "listBudgets",
      summary: "The team's budgets with their current spend",
      role: "viewer",
      ok: { status: 200, description: "budgets", schema: itemsOf(idView) },
      handle: async ({ team }) => ({ items: await listBudgets(deps, team) }),
    }),
    defineRoute({
      ...budget,
      method: "get",
      path: "/v1/budgets/{id}",
      operationId: "getBudget",
      summary: "One budget with its current spend",
      role: "viewer",
      ok: { status: 200, description: "the budget", schema: idView },
      handle: ({ team, params }) => getBudget(deps, team, params.id!),
    }),
    defineRoute({
      ...budget,
      method: "put",
      path: "/v1/budgets/{id}",
      operationId: "updateBudget",
      summary: "Replace a budget (thresholds alert afresh)",
      role: "admin",
      body: budgetInputSchema,
      ok: { status: 200, description: "the budget", schema: idView },
      audit: "budget.update",
      handle: ({ team, params, body }) => updateBudget(deps, team, params.id!, body),
    }),
    defineRoute({
      ...budget,
      method: "delete",
      path: "/v1/budgets/{id}",
      operationId: "deleteBudget",
      summary: "Delete a budget",
      role: "admin",
      ok: { status: 204, description: "deleted" },
      audit: "budget.delete",
      async handle({ team, params }) {
        await deleteBudget(deps, team, params.id!);
        return null;
      },
    }),
  ];
}
