import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger } from "@trainyard/common";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { apiRoutes } from "../routes";
import { errorHandler } from "./errors";
import { SCOPE_TEXT } from "./openapi";
import { type ApiRoute, defineRoute, mountRoutes, scopeCheck } from "./route-table";

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

describe("the route table validates inputs itself", () => {
  let server: Server;
  let url: string;
  const seen: unknown[] = [];
  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    // Stands in for the API key check: every caller is a member of team t.
    app.use((_req, res, next) => {
      res.locals.principal = { team: "t", role: "member", keyId: "k", keyName: "k" };
      next();
    });
    const router = express.Router();
    mountRoutes(
      router,
      [
        defineRoute({
          method: "post",
          path: "/things",
          operationId: "makeThing",
          summary: "test",
          tag: "test",
          role: "member",
          scope: "team",
          query: z.object({ n: z.coerce.number().int().default(1) }),
          body: z.object({ name: z.string().min(1) }).strict(),
          ok: { status: 201, description: "made" },
          async handle({ body, query }) {
            seen.push({ body, query });
            return { name: body.name, n: query.n };
          },
        }),
      ],
      {} as never,
    );
    app.use(router);
    app.use(errorHandler(createLogger("api-test", "silent")));
    await new Promise<void>((resolve) => {
      server = app.listen(0, "127.0.0.1", () => resolve());
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  it("hands the handler the body and query as the route's schemas parse them", async () => {
    const res = await post("/things?n=3", { name: "a" });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ name: "a", n: 3 });
    expect(seen.at(-1)).toEqual({ body: { name: "a" }, query: { n: 3 } });
  });

  it("answers 400 naming the field, before the handler runs, for a body or query outside the schema", async () => {
    const before = seen.length;
    for (const [path, body, field] of [
      ["/things", { name: "" }, "name"],
      ["/things", { name: "a", extra: 1 }, "extra"],
      ["/things?n=x", { name: "a" }, "n"],
    ] as const) {
      const res = await post(path, body);
      expect(res.status, path).toBe(400);
      expect(JSON.stringify(await res.json())).toContain(field);
    }
    expect(seen.length).toBe(before);
  });
});
