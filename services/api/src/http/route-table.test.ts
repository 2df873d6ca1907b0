import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { apiRoutes } from "../routes";
import { SCOPE_TEXT } from "./openapi";
import { type ApiRoute, scopeCheck } from "./route-table";

const routes = apiRoutes({} as never);

describe("route scopes", () => {
  it("every route declares a scope its check accepts; platform routes need an operator", () => {
    for (const r of routes) {
      expect(() => scopeCheck(r), r.operationId).not.toThrow();
      if (r.scope === "platform") expect(r.role, r.operationId).toBe("operator");
      if (r.scope === "named-team") expect(r.path, r.operationId).toContain("{team}");
    }
  });

  it("a platform route open to less than an operator, or a named-team route without {team}, cannot be mounted", () => {
    const base = routes.find((r) => r.operationId === "setTeamQuota")!;
    expect(() => scopeCheck({ ...base, role: "admin" })).toThrow(/must need the 'operator' role/);
    expect(() => scopeCheck({ ...base, scope: "named-team", path: "/v1/quota" })).toThrow(/needs a \{team\} path parameter/);
    expect(() => scopeCheck({ ...base, scope: "nobody" } as unknown as ApiRoute)).toThrow(/unknown scope/);
  });

  it("docs/api.md's access matrix is the route table", () => {
    const doc = readFileSync(new URL("../../../../docs/api.md", import.meta.url), "utf8");
    const rows = [...doc.matchAll(/^\| `(GET|POST|PUT|DELETE) ([^`]+)` \| `(\w+)` \| `([\w-]+)` \|/gm)].map(
      (m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}`,
    );
    const table = routes.map((r) => `${r.method.toUpperCase()} ${r.path} ${r.role} ${r.scope}`);
    expect(rows.sort()).toEqual(table.sort());
    for (const text of Object.values(SCOPE_TEXT)) expect(doc).toContain(text);
  });
});
