import {
  type ApiKeyView,
  AUDIT_ACTIONS,
  type AuditEventView,
  type apiKeyInputSchema,
  generateApiKey,
  notFound,
  OPERATOR_ROLE,
  type quotaSchema,
  type Role,
  roleAllows,
  type TeamView,
  type teamDefaultPrioritySchema,
  type teamInputSchema,
  UserError,
} from "@trainyard/common";
import { requestSchedulingPass } from "@trainyard/core";
import { apiKeyView, auditEventView, teamView } from "@trainyard/db";
import { z } from "zod";
import type { ApiDeps } from "../context";
import type { Principal } from "../http/auth";

export async function createTeam(deps: ApiDeps, input: z.output<typeof teamInputSchema>): Promise<TeamView> {
  const team = teamView(await deps.repos.teams.create(input.name, input.quota));
  deps.logger.info({ team: team.name }, "team created");
  return team;
}

export async function listTeams(deps: ApiDeps): Promise<{ items: TeamView[] }> {
  return { items: (await deps.repos.teams.list()).map(teamView) };
}

export async function getTeam(deps: ApiDeps, name: string): Promise<TeamView> {
  return teamView(await deps.repos.teams.get(name));
}

/** Set a team's quota; a pass is requested on every cluster the team has queued jobs on, as a raise may admit them. */
export async function setTeamQuota(deps: ApiDeps, name: string, body: z.output<typeof quotaSchema>): Promise<TeamView> {
  const team = teamView(await deps.repos.teams.setQuota(name, body));
  const clusters = new Set((await deps.repos.jobs.listByTeam(name, ["QUEUED"])).map((j) => j.clusterId.toString()));
  for (const id of clusters) await requestSchedulingPass(deps.bus, id).catch(() => undefined);
  return team;
}

/** Set or remove (null) the priority of the team's jobs submitted without one; queued jobs keep theirs. */
export async function setTeamDefaultPriority(
  deps: ApiDeps,
  name: string,
  { priority }: z.output<typeof teamDefaultPrioritySchema>,
): Promise<TeamView> {
  const team = teamView(await deps.repos.teams.setDefaultPriority(name, priority));
  deps.logger.info({ team: name, defaultPriority: priority }, "team default priority set");
  return team;
}

/** A new key: the only time the whole key is shown. */
export interface IssuedApiKey extends ApiKeyView {
  key: string;
}

/** 403 unless `by` holds at least `role`: no key hands out or takes away more than it has. */
function assertRoleWithin(by: Principal, role: Role, verb: "issue" | "revoke"): void {
  if (!roleAllows(by.role, role)) {
    throw new UserError(403, `a key with the role '${by.role}' cannot ${verb} a key with the higher role '${role}'`);
  }
}

/**
 * Issue a key for a team; only its SHA-256 is stored, the key itself is returned once. Never a
 * role above the issuer's; operator keys only in the platform team, so no other team can hold one.
 */
export async function issueApiKey(
  deps: ApiDeps,
  by: Principal,
  team: string,
  input: z.output<typeof apiKeyInputSchema>,
): Promise<IssuedApiKey> {
  assertRoleWithin(by, input.role, "issue");
  await deps.repos.teams.get(team);
  if (input.role === OPERATOR_ROLE && team !== deps.platformTeam) {
    throw new UserError(400, `operator keys belong to the platform team '${deps.platformTeam}', not to '${team}'`);
  }
  const { id, key, hash } = generateApiKey();
  const doc = await deps.repos.apiKeys.insert({
    keyId: id,
    team,
    name: input.name,
    role: input.role,
    hash,
    createdBy: by.keyId,
    ...(input.expiresInDays !== undefined ? { expiresAt: new Date(Date.now() + input.expiresInDays * 86_400_000) } : {}),
  });
  deps.logger.info({ team, keyId: id, role: input.role }, "API key issued");
  return { ...apiKeyView(doc), key };
}

export async function listApiKeys(deps: ApiDeps, team: string): Promise<{ items: ApiKeyView[] }> {
  await deps.repos.teams.get(team);
  return { items: (await deps.repos.apiKeys.list(team)).map(apiKeyView) };
}

export async function revokeApiKey(deps: ApiDeps, by: Principal, team: string, keyId: string): Promise<void> {
  const key = await deps.repos.apiKeys.byKeyId(keyId);
  if (!key || key.team !== team) throw notFound(`API key '${keyId}'`);
  assertRoleWithin(by, key.role, "revoke");
  await deps.repos.apiKeys.revoke(team, keyId);
  deps.logger.info({ team, keyId }, "API key revoked");
}

export const auditQuerySchema = z
  .object({
    team: z.string().max(63).optional(),
    action: z.enum(AUDIT_ACTIONS, { error: `must be one of ${AUDIT_ACTIONS.join(", ")}` }).optional(),
    before: z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" }).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

/**
 * The audit log, newest first; page with `before` = the last event's `at`. Operators read every
 * team's events (or one team's with `team`); a team's admins read their own team's only.
 */
export async function listAuditEvents(
  deps: ApiDeps,
  by: Principal,
  q: z.output<typeof auditQuerySchema>,
): Promise<{ items: AuditEventView[] }> {
  let team = q.team;
  if (by.role !== OPERATOR_ROLE) {
    // Another team's name is answered as if it did not exist, as everywhere else.
    if (team !== undefined && team !== by.team) throw notFound(`team '${team}'`);
    team = by.team;
  }
  const events = await deps.repos.audit.list({
    limit: q.limit,
    ...(team ? { team } : {}),
    ...(q.action ? { action: q.action } : {}),
    ...(q.before ? { before: new Date(q.before) } : {}),
  });
  return { items: events.map(auditEventView) };
}

/** The caller: its key, team, role and the team's quota. */
export async function whoAmI(
  deps: ApiDeps,
  p: Principal,
): Promise<{ keyId: string; keyName: string; team: string; role: string; quota: unknown }> {
  return { keyId: p.keyId, keyName: p.keyName, team: p.team, role: p.role, quota: await deps.repos.teams.quotaOf(p.team) };
}
