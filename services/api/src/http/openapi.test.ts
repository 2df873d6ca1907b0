import { describe, expect, it } from "vitest";
import { apiRoutes } from "../routes";
import { openApiDocument } from "./openapi";
import { pathParams } from "./route-table";

const routes = apiRoutes({} as never);
const doc = openApiDocument(routes, "test") as {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        operationId: string;
        parameters: Array<{ name: string; in: string }>;
        requestBody?: { content: Record<string, { schema: { examples?: unknown[] } }> };
        responses: Record<string, { links?: Record<string, { operationId: string; parameters: Record<string, string> }> }>;
      }
    >
  >;
};
const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));

describe("the OpenAPI document", () => {
  it("is 3.1 with one uniquely named operation per route", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(operations).toHaveLength(routes.length);
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(routes.length);
  });

  it("declares every path parameter", () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops)) {
        expect(op.parameters.filter((p) => p.in === "path").map((p) => p.name)).toEqual(pathParams(path));
      }
    }
  });

  it("shows request examples the server accepts", () => {
    let seen = 0;
    for (const route of routes.filter((r) => r.body)) {
      const op = doc.paths[route.path]![route.method]!;
      for (const example of op.requestBody!.content["application/json"]!.schema.examples ?? []) {
        seen++;
        const parsed = route.body!.safeParse(example);
        expect(parsed.success, `${route.operationId}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
      }
    }
    expect(seen).toBeGreaterThanOrEqual(3); // registerCluster, submitJob, dryRunJob
  });

  it("links what an operation creates to the operations on it", () => {
    const created = doc.paths["/v1/budgets"]!.post!.responses["201"]!.links!;
    expect(Object.keys(created).sort()).toEqual(["deleteBudget", "getBudget", "updateBudget"]);
    expect(created.getBudget!.parameters).toEqual({ id: "$response.body#/id" });
    const key = doc.paths["/v1/teams/{team}/keys"]!.post!.responses["201"]!.links!;
    expect(key.revokeApiKey!.parameters).toEqual({ keyId: "$response.body#/id", team: "$request.path.team" });
    for (const op of operations)
      for (const res of Object.values(op.responses))
        for (const link of Object.values(res.links ?? {}))
          expect(operations.map((o) => o.operationId)).toContain(link.operationId);
  });
});
