import { apiKeyInputSchema, quotaSchema, teamDefaultPrioritySchema, teamInputSchema } from "@trainyard/common";
import { z } from "zod";
import type { ApiDeps } from "../context";
import { type ApiRoute, defineRoute } from "../http/route-table";
import { itemsOf, namedView, objectWith } from "../http/schemas";
import {
  auditQuerySchema,
  createTeam,
  getTeam,
  issueApiKey,
  listApiKeys,
  listAuditEvents,
  listTeams,
  revokeApiKey,
  setTeamDefaultPriority,
  setTeamQuota,
  whoAmI,
} from "../usecases/access";

const keyView = objectWith({ id: z.string(), team: z.string(), role: z.string(), prefix: z.string() });

/**
 * Teams and quotas (operators), a team's keys (its admins; operators for every team), the audit
 * log (operators all of it, a team's admins their team's), and /v1/me for everyone.
 */
export function accessRoutes(deps: ApiDeps): ApiRoute[] {
  const platform = { tag: "access", scope: "platform", role: "operator" } as const;
  const teamKeys = { tag: "access", scope: "named-team", role: "admin" } as const;
  return [
    defineRoute({
      method: "get",
      path: "/v1/me",
      operationId: "whoAmI",
      summary: "The calling key: its team, role and the team's quota",
      tag: "access",
      scope: "team",
      role: "viewer",
      ok: { status: 200, description: "the caller", schema: objectWith({ team: z.string(), role: z.string() }) },
      handle: ({ principal }) => whoAmI(deps, principal),
    }),
    defineRoute({
      ...platform,
      method: "post",
      path: "/v1/teams",
      operationId: "createTeam",
      summary: "Create a team (optionally with quotas)",
      body: teamInputSchema,
      ok: { status: 201, description: "created", schema: namedView, names: "name" },
      audit: "team.create",
      async handle({ res, body }) {
        const team = await createTeam(deps, body);
        res.locals.auditTeam = team.name;
        return team;
      },
    }),
    defineRoute({
      ...platform,
      method: "get",
      path: "/v1/teams",
      operationId: "listTeams",
      summary: "Every team",
      ok: { status: 200, description: "teams", schema: itemsOf(namedView) },
      handle: () => listTeams(deps),
    }),
    defineRoute({
      tag: "access",
      scope: "named-team",
      role: "viewer",
      method: "get",
      path: "/v1/teams/{team}",
      operationId: "getTeam",
      summary: "One team and its quota",
      ok: { status: 200, description: "the team", schema: namedView },
      handle: ({ params }) => getTeam(deps, params.team!),
    }),
    defineRoute({
      ...platform,
      method: "put",
      path: "/v1/teams/{team}/quota",
      operationId: "setTeamQuota",
      summary: "Set a team's quotas: most concurrent GPUs and jobs (beyond them jobs wait in QUEUED)",
      body: quotaSchema,
      ok: { status: 200, description: "the team", schema: namedView },
      audit: "team.quota",
      async handle({ res, params, body }) {
        res.locals.auditTeam = params.team;
        return setTeamQuota(deps, params.team!, body);
      },
    }),
    defineRoute({
      ...teamKeys,
      method: "put",
      path: "/v1/teams/{team}/default-priority",
      operationId: "setTeamDefaultPriority",
      summary:
        "Set the priority the team's jobs get when submitted without one (null: back to 0); jobs already submitted keep theirs",
      body: teamDefaultPrioritySchema,
      ok: { status: 200, description: "the team", schema: namedView },
      audit: "team.default-priority",
      async handle({ res, params, body }) {
        res.locals.auditTeam = params.team;
        return setTeamDefaultPriority(deps, params.team!, body);
      },
    }),
    defineRoute({
      ...teamKeys,
      method: "post",
      path: "/v1/teams/{team}/keys",
      operationId: "issueApiKey",
      summary: "Issue an API key for a team; the key is in this response only",
      body: apiKeyInputSchema,
      ok: { status: 201, description: "the key (shown once)", schema: keyView.extend({ key: z.string() }), names: "id" },
      audit: "key.issue",
      async handle({ res, principal, params, body }) {
        res.locals.auditTeam = params.team;
        return issueApiKey(deps, principal, params.team!, body);
      },
    }),
    defineRoute({
      ...teamKeys,
      method: "get",
      path: "/v1/teams/{team}/keys",
      operationId: "listApiKeys",
      summary: "A team's keys (never the secrets)",
      ok: { status: 200, description: "keys", schema: itemsOf(keyView) },
      handle: ({ params }) => listApiKeys(deps, params.team!),
    }),
    defineRoute({
      ...teamKeys,
      method: "delete",
      path: "/v1/teams/{team}/keys/{keyId}",
      operationId: "revokeApiKey",
      summary: "Revoke a key: it answers 401 from now on",
      ok: { status: 204, description: "revoked" },
      audit: "key.revoke",
      async handle({ res, principal, params }) {
        res.locals.auditTeam = params.team;
        await revokeApiKey(deps, principal, params.team!, params.keyId!);
        return null;
      },
    }),
    defineRoute({
      tag: "access",
      scope: "team",
      role: "admin",
      method: "get",
      path: "/v1/audit",
      operationId: "listAuditEvents",
      summary:
        "Who did what: submits, cancels, budget, channel, cluster, key, team and quota changes; newest first. " +
        "Operators read every team's events, a team's admins their own team's",
      query: auditQuerySchema,
      ok: { status: 200, description: "events", schema: itemsOf(objectWith({ action: z.string() })) },
      handle: ({ principal, query }) => listAuditEvents(deps, principal, query),
    }),
  ];
}
