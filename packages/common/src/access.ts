import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { prioritySchema } from "./job";
import { nameSchema } from "./names";

/**
 * Who may do what. A key belongs to one team and has one role:
 *   viewer    reads its team's objects;
 *   member    also submits and cancels its team's jobs and deletes their checkpoints;
 *   admin     also changes its team's clusters, budgets, channels, storage credentials and keys
 *             (never a key above its own role) and reads its team's audit log;
 *   operator  runs the platform: teams, quotas, pricing, the queue dashboard, every team's keys
 *             and the whole audit log. Only the platform team (API_ADMIN_TEAM) holds operator
 *             keys: the bootstrap token and the keys an operator issues as such.
 * Team-owned objects are always scoped to the key's team, operators included.
 */
export const ROLES = ["viewer", "member", "admin", "operator"] as const;
export type Role = (typeof ROLES)[number];
export const roleSchema = z.enum(ROLES, { error: `must be one of ${ROLES.join(", ")}` });

/** The role that runs the platform; see ROLES. */
export const OPERATOR_ROLE = "operator" satisfies Role;

/** Whether `role` may do what needs `needed`. */
export const roleAllows = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

export const quotaSchema = z
  .object({
    /** Most GPUs the team's jobs may hold at once (launching or running); absent = no limit. */
    maxGpus: z.number().int().min(0).max(1_000_000).optional(),
    /** Most jobs the team may have launching or running at once; absent = no limit. */
    maxJobs: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();
export type Quota = z.infer<typeof quotaSchema>;

export const teamInputSchema = z.object({ name: nameSchema, quota: quotaSchema.default({}) }).strict();
export type TeamInput = z.infer<typeof teamInputSchema>;

/**
 * A team's default job priority: what a job submitted without `priority` gets (absent: 0). `null`
 * removes it. Set by the team's admins or an operator; jobs already submitted keep theirs.
 */
export const teamDefaultPrioritySchema = z.object({ priority: prioritySchema.nullable() }).strict();

export interface TeamView {
  name: string;
  quota: Quota;
  /** Priority of the team's jobs submitted without one; absent = 0. */
  defaultPriority?: number;
  createdAt: string;
}

/** Longest life of an API key: 10 years; expiry is optional. */
const MAX_KEY_DAYS = 3650;
export const apiKeyInputSchema = z
  .object({
    name: nameSchema,
    role: roleSchema,
    /** Days until the key expires (fractions allowed); absent = never. */
    expiresInDays: z.number().positive().max(MAX_KEY_DAYS).optional(),
  })
  .strict();
export type ApiKeyInput = z.infer<typeof apiKeyInputSchema>;

export interface ApiKeyView {
  id: string;
  team: string;
  name: string;
  role: Role;
  /** The readable start of the key (`tyk_<id>_`), for telling keys apart; never the secret. */
  prefix: string;
  createdAt: string;
  createdBy: string;
  expiresAt?: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

/**
 * API key format: `tyk_<id>_<secret>`. The id (12 hex characters) finds the record; the secret
 * is 32 random bytes (256 bits) in base64url. Only a SHA-256 of the whole key is stored: keys are
 * random, so a fast hash cannot be brute-forced, and lookups stay cheap.
 */
export const API_KEY_PATTERN = /^tyk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function generateApiKey(): { id: string; key: string; hash: string; prefix: string } {
  const id = randomBytes(6).toString("hex");
  const key = `tyk_${id}_${randomBytes(32).toString("base64url")}`;
  return { id, key, hash: hashApiKey(key), prefix: `tyk_${id}_` };
}

/** The key id of a well-formed key, or undefined. */
export function apiKeyId(token: string): string | undefined {
  return API_KEY_PATTERN.exec(token)?.[1];
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/**
 * Constant-time comparison of two secrets: both sides are hashed first, so neither the length
 * nor the position of the first differing character leaks through timing.
 */
export function secretsEqual(given: string, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** What the audit log records. */
export const AUDIT_ACTIONS = [
  "team.create",
  "team.quota",
  "team.default-priority",
  "key.issue",
  "key.revoke",
  "cluster.register",
  "cluster.check",
  "cluster.share",
  "cluster.acknowledge-gpus",
  "cluster.cordon",
  "cluster.drain",
  "cluster.uncordon",
  "cluster.node-add",
  "cluster.node-remove",
  "cluster.repin",
  "job.submit",
  "job.cancel",
  "job.resubmit",
  "checkpoint.delete",
  "budget.create",
  "budget.update",
  "budget.delete",
  "alert-channel.create",
  "alert-channel.update",
  "alert-channel.delete",
  "storage-credential.create",
  "storage-credential.delete",
  "pricing.update",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEventView {
  id: string;
  at: string;
  /** Who: the key (id and name), its team and role. */
  actor: { keyId: string; keyName: string; team: string; role: Role };
  action: AuditAction;
  /** The team whose object changed. */
  team: string;
  target: string;
  /** Request id, method and path, for tying the event to access logs. */
  request: { method: string; path: string };
}
