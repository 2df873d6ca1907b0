import { z } from "zod";
import { type ApiRoute, pathParams, type RouteScope } from "./route-table";
import { errorBodySchema } from "./schemas";

/** How each route scope reads in the document (and in docs/api.md's access matrix). */
export const SCOPE_TEXT: Record<RouteScope, string> = {
  team: "acts on the caller's team only",
  "named-team": "acts on the team in the path: the caller's own, or any team for an operator",
  platform: "platform operation (operators only)",
};

type JsonSchema = Record<string, unknown>;

/** JSON Schema 2020-12 (what OpenAPI 3.1 uses) of a zod schema, as requests are parsed or replies built. */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
  }) as JsonSchema;
  return rest;
}

const ERRORS: Record<string, string> = {
  "400": "invalid input; the message names each field and rule",
  "401": "missing, malformed, unknown, revoked or expired API key",
  "403": "the key's role may not do this",
  "404": "no such object for the caller's team (another team's objects are never visible)",
  "409": "conflicts with the current state",
  "413": "request body over the size limit",
  "415": "request body is not JSON",
  "429": "rate limit exceeded; retry after `Retry-After` seconds",
  "503": "the database is momentarily busy or unreachable; retry after `Retry-After` seconds",
};
/** Extra statuses some operations answer. */
const EXTRA_ERRORS: Record<string, Record<string, string>> = {
  submitJob: { "402": "a `stop` budget of the team or project is exhausted" },
  resubmitJob: { "402": "a `stop` budget of the team or project is exhausted" },
  checkCluster: { "502": "a node could not be reached" },
  getJobLogs: { "502": "the node holding the log could not be reached" },
};

function queryParameters(schema: z.ZodType): JsonSchema[] {
  const js = jsonSchema(schema, "input") as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: "query",
    required: js.required?.includes(name) ?? false,
    schema: s,
  }));
}

/**
 * OpenAPI links from an operation that creates something to the operations on it (the routes under
 * its path with one more parameter): clients and Schemathesis' stateful tests follow them.
 */
function linksOf(route: ApiRoute, routes: readonly ApiRoute[]): Record<string, unknown> | undefined {
  if (!route.ok.names) return undefined;
  const own = pathParams(route.path);
  const links: Record<string, unknown> = {};
  for (const other of routes) {
    if (!other.path.startsWith(`${route.path}/{`)) continue;
    const [created] = pathParams(other.path.slice(route.path.length));
    const parameters: Record<string, string> = { [created!]: `$response.body#/${route.ok.names}` };
    for (const p of own) parameters[p] = `$request.path.${p}`;
    links[other.operationId] = { operationId: other.operationId, parameters };
  }
  return Object.keys(links).length ? links : undefined;
}

function operation(route: ApiRoute, routes: readonly ApiRoute[]): JsonSchema {
  const errorResponse = (description: string) => ({
    description,
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  });
  const responses: Record<string, unknown> = {};
  for (const status of [route.ok.status, ...(route.ok.alsoStatus ?? [])]) {
    const schema = route.ok.schema ? jsonSchema(route.ok.schema, "output") : route.ok.contentType ? { type: "string" } : {};
    const links = status === route.ok.status ? linksOf(route, routes) : undefined;
    responses[String(status)] = {
      description: route.ok.description,
      ...(status !== 204 ? { content: { [route.ok.contentType ?? "application/json"]: { schema } } } : {}),
      ...(links ? { links } : {}),
    };
  }
  const hasBody = route.body !== undefined;
  for (const [code, text] of Object.entries({ ...ERRORS, ...EXTRA_ERRORS[route.operationId] })) {
    if ((code === "413" || code === "415") && !hasBody) continue;
    responses[code] = errorResponse(text);
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    description: `Needs role \`${route.role}\`; ${SCOPE_TEXT[route.scope]}.`,
    parameters: [
      ...pathParams(route.path).map((name) => ({
        name,
        in: "path",
        required: true,
        schema: { type: "string", minLength: 1, maxLength: 128 },
      })),
      ...(route.query ? queryParameters(route.query) : []),
      ...(route.operationId === "submitJob"
        ? [
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              schema: { type: "string", pattern: "^[A-Za-z0-9_.:-]{1,128}$" },
            },
          ]
        : []),
    ],
    ...(hasBody
      ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(route.body!, "input") } } } }
      : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of the API, built from the route table and its zod schemas. */
export function openApiDocument(routes: readonly ApiRoute[], version: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    paths[route.path]![route.method] = operation(route, routes);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Trainyard API",
      version,
      description:
        "Distributed training jobs on SSH-reachable GPU machines. Authenticate with `Authorization: Bearer <API key>`; every object belongs to the key's team.",
    },
    security: [{ bearerAuth: [] }],
    tags: [
      { name: "jobs" },
      { name: "checkpoints" },
      { name: "clusters" },
      { name: "costs" },
      { name: "budgets" },
      { name: "alerts" },
      { name: "pricing" },
      { name: "access" },
    ],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "an API key (tyk_…) or the bootstrap admin token" },
      },
      schemas: { Error: jsonSchema(errorBodySchema, "output") },
    },
  };
}
