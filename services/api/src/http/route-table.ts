import { type AuditAction, OPERATOR_ROLE, type Role } from "@trainyard/common";
import type { Request, RequestHandler, Response, Router } from "express";
import type { z } from "zod";
import type { ApiDeps } from "../context";
import { type Principal, principalOf, requireRole } from "./auth";

export type HttpMethod = "get" | "post" | "put" | "delete";

/**
 * Who owns the objects a route reaches, enforced by `mountRoutes` for every route:
 *   team        the caller's team (its own objects, or clusters shared with it): another team's
 *               object is a 404;
 *   named-team  the team named by the path's {team}: a team's key reaches only its own team
 *               (another team is a 404), an operator reaches every team;
 *   platform    the platform's: teams, quotas, pricing; operators only (role `operator`).
 */
export type RouteScope = "team" | "named-team" | "platform";

export interface RouteContext<Query = unknown, Body = unknown> {
  req: Request;
  res: Response;
  principal: Principal;
  /** The caller's team: every team-scoped use case takes it. */
  team: string;
  params: Record<string, string>;
  /** The query string parsed by the route's `query` schema (a 400 before the handler when it does not parse). */
  query: Query;
  /** The body parsed by the route's `body` schema (a 400 before the handler when it does not parse). */
  body: Body;
}

/** What a route's optional schema parses to: its output type, or nothing when the route has none. */
type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/**
 * One API operation: the single description the server mounts, the OpenAPI document is built
 * from, the audit log names and the isolation test walks. A new route is one more entry here.
 */
export interface ApiRoute<
  Q extends z.ZodType | undefined = z.ZodType | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
> {
  method: HttpMethod;
  /** OpenAPI form: /v1/jobs/{id}. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Least role allowed. */
  role: Role;
  scope: RouteScope;
  /** The query string's schema: parsed once here, never again by the use case. */
  query?: Q;
  /** The JSON body's schema: parsed once here, never again by the use case. */
  body?: B;
  /** Success status and body; `schema` describes it in the OpenAPI document. */
  ok: {
    status: number;
    description: string;
    schema?: z.ZodType;
    contentType?: string;
    alsoStatus?: number[];
    /** The reply's field that names what this operation created, for OpenAPI links to the operations on it. */
    names?: "id" | "name";
  };
  /** Recorded in the audit log when the operation succeeds. */
  audit?: AuditAction;
  /**
   * The response body, sent as JSON with `ok.status`; null for no body (204); undefined when the
   * handler answered itself (plain-text logs, event streams).
   */
  handle(ctx: RouteContext<Parsed<Q>, Parsed<B>>): Promise<unknown>;
}

/**
 * One entry of the route table, typed by its own schemas: the handler receives the body and query
 * as those schemas parse them, so a use case takes a typed input instead of parsing it again.
 */
export function defineRoute<Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  route: ApiRoute<Q, B>,
): ApiRoute {
  return route as unknown as ApiRoute;
}

/** The request's query and body through the route's schemas (a ZodError is answered 400 by the error handler). */
function parseInputs(route: ApiRoute, req: Request): { query: unknown; body: unknown } {
  return {
    query: route.query ? route.query.parse(req.query) : undefined,
    // No body at all is parsed as an empty object: a route whose fields are all optional accepts it.
    body: route.body ? route.body.parse(req.body ?? {}) : undefined,
  };
}

/** Express path syntax for an OpenAPI path: /v1/jobs/{id} -> /v1/jobs/:id. */
export const expressPath = (path: string) => path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");

/** Path parameter names of an OpenAPI path, in order. */
export const pathParams = (path: string) => [...path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!);

/** What an audit event names as its target: the path's last parameter, else the new object's id or name. */
function auditTarget(params: Record<string, string>, route: ApiRoute, body: unknown): string {
  const names = pathParams(route.path);
  const fromPath = names.map((n) => params[n]).filter(Boolean);
  if (fromPath.length) return fromPath.join("/");
  const b = body as { id?: unknown; name?: unknown } | undefined;
  return String(b?.id ?? b?.name ?? "");
}

/**
 * The route's declared scope as a check, from the table alone: a route cannot be mounted without
 * one, and a platform route that would let anyone below an operator in is a wiring error.
 */
export function scopeCheck(route: ApiRoute): RequestHandler {
  switch (route.scope) {
    case "team":
      return (_req, _res, next) => next();
    case "platform":
      if (route.role !== OPERATOR_ROLE) {
        throw new Error(`${route.operationId}: a platform route must need the '${OPERATOR_ROLE}' role`);
      }
      return (_req, _res, next) => next();
    case "named-team":
      if (!pathParams(route.path).includes("team")) {
        throw new Error(`${route.operationId}: a named-team route needs a {team} path parameter`);
      }
      return (req, res, next) => {
        const { role, team } = principalOf(res);
        const named = String(req.params.team);
        if (role === OPERATOR_ROLE || named === team) return next();
        // The same answer as for a team that does not exist: other teams' names do not leak.
        res.status(404).json({ error: { message: `team '${named}' not found` } });
      };
    default:
      throw new Error(`${(route as ApiRoute).operationId}: unknown scope '${String((route as ApiRoute).scope)}'`);
  }
}

/** Actions that change what a submit reads through ApiDeps.config (teams, clusters, budgets). */
const changesSubmitConfig = (action: AuditAction) => /^(team|cluster|budget)\./.test(action);

/** Mount every route on `router`: role and scope checks, handler, JSON reply, audit event on success. */
export function mountRoutes(router: Router, routes: readonly ApiRoute[], deps: ApiDeps): void {
  for (const route of routes) {
    router[route.method](expressPath(route.path), requireRole(route.role), scopeCheck(route), async (req, res) => {
      const principal = principalOf(res);
      const params = req.params as Record<string, string>;
      const inputs = parseInputs(route, req);
      const body = await route.handle({ req, res, principal, team: principal.team, params, ...inputs });
      // This replica's next submit reads the team, cluster or budget as this request left it.
      if (route.audit && changesSubmitConfig(route.audit)) deps.config.forgetAll();
      // Audited before the reply goes out, so a caller that sees success also finds the event.
      if (route.audit && !res.headersSent) {
        await deps.repos.audit
          .record({
            at: new Date(),
            actor: { keyId: principal.keyId, keyName: principal.keyName, team: principal.team, role: principal.role },
            action: route.audit,
            team: (res.locals.auditTeam as string | undefined) ?? principal.team,
            target: auditTarget(params, route, body),
            request: { method: req.method, path: req.originalUrl.split("?")[0] ?? req.path },
          })
          // The change happened; a lost audit line must not turn it into an error, but is logged loudly.
          .catch((err: Error) =>
            deps.logger.error({ err: err.message, action: route.audit, keyId: principal.keyId }, "could not write audit event"),
          );
      }
      if (res.headersSent || body === undefined) return;
      // A handler may answer another success status (a repeated idempotent submit is a 200).
      const status = (res.locals.replyStatus as number | undefined) ?? route.ok.status;
      if (body === null) res.status(status).end();
      else res.status(status).json(body);
    });
  }
}
