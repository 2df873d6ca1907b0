import {
  type ApiKeyView,
  type AuditAction,
  type AuditEventView,
  conflict,
  notFound,
  type Quota,
  ROLES,
  type Role,
  type TeamView,
} from "@trainyard/common";
import { type Connection, type Model, Schema, Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";
import { GroupInsert } from "./group-insert";

// ---------- teams ----------
export interface TeamDoc {
  _id: Types.ObjectId;
  name: string;
  quota: Quota;
  /** Priority of the team's jobs submitted without one; absent = 0. */
  defaultPriority?: number;
  createdAt: Date;
}
const opts = { _id: false } as const;
const teamSchema = new Schema<TeamDoc>(
  {
    name: { type: String, required: true },
    quota: new Schema({ maxGpus: Number, maxJobs: Number }, opts),
    defaultPriority: Number,
  },
  { timestamps: { createdAt: true, updatedAt: false }, minimize: false },
);
teamSchema.index({ name: 1 }, { unique: true });

export function teamView(d: TeamDoc): TeamView {
  const quota: Quota = {};
  if (typeof d.quota?.maxGpus === "number") quota.maxGpus = d.quota.maxGpus;
  if (typeof d.quota?.maxJobs === "number") quota.maxJobs = d.quota.maxJobs;
  return {
    name: d.name,
    quota,
    ...(typeof d.defaultPriority === "number" ? { defaultPriority: d.defaultPriority } : {}),
    createdAt: d.createdAt.toISOString(),
  };
}

export class TeamRepo {
  private readonly Team: Model<TeamDoc>;
  constructor(conn: Connection) {
    this.Team = (conn.models.Team as Model<TeamDoc>) ?? conn.model<TeamDoc>("Team", teamSchema, "teams");
  }
  syncIndexes() {
    return this.Team.syncIndexes();
  }

  async create(name: string, quota: Quota): Promise<TeamDoc> {
    try {
      return (await this.Team.create({ name, quota })).toObject();
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict(`a team named '${name}' already exists`);
      throw err;
    }
  }

  /** The bootstrap team exists from the first start on; a concurrent start creating it too is fine. */
  async ensure(name: string): Promise<void> {
    if (await this.Team.exists({ name })) return;
    await this.create(name, {}).catch((err) => {
      if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
    });
  }

  async byName(name: string): Promise<TeamDoc | null> {
    return this.Team.findOne({ name }).lean<TeamDoc>();
  }

  async get(name: string): Promise<TeamDoc> {
    const doc = await this.byName(name);
    if (!doc) throw notFound(`team '${name}'`);
    return doc;
  }

  async list(): Promise<TeamDoc[]> {
    return this.Team.find({}).sort({ name: 1 }).lean<TeamDoc[]>();
  }

  async setQuota(name: string, quota: Quota): Promise<TeamDoc> {
    const doc = await this.Team.findOneAndUpdate({ name }, { $set: { quota } }, { returnDocument: "after" }).lean<TeamDoc>();
    if (!doc) throw notFound(`team '${name}'`);
    return doc;
  }

  /** Set (a number) or remove (null) the priority of the team's jobs submitted without one. */
  async setDefaultPriority(name: string, priority: number | null): Promise<TeamDoc> {
    const update = priority === null ? { $unset: { defaultPriority: 1 } } : { $set: { defaultPriority: priority } };
    const doc = await this.Team.findOneAndUpdate({ name }, update, { returnDocument: "after" }).lean<TeamDoc>();
    if (!doc) throw notFound(`team '${name}'`);
    return doc;
  }

  /** The priority a job of the team gets when submitted without one (0 unless the team set one). */
  async defaultPriorityOf(name: string): Promise<number> {
    const doc = await this.Team.findOne({ name }, { defaultPriority: 1 }).lean<Pick<TeamDoc, "defaultPriority">>();
    return doc?.defaultPriority ?? 0;
  }

  /** The team's quota; an unknown team (only in tests that bypass the API) has none. */
  async quotaOf(name: string): Promise<Quota> {
    return (await this.byName(name))?.quota ?? {};
  }
}

// ---------- API keys ----------
export interface ApiKeyDoc {
  _id: Types.ObjectId;
  keyId: string;
  team: string;
  name: string;
  role: Role;
  /** SHA-256 of the whole key (hex); the key itself is never stored. */
  hash: string;
  createdBy: string;
  expiresAt?: Date;
  revokedAt?: Date;
  lastUsedAt?: Date;
  createdAt: Date;
}
const apiKeySchema = new Schema<ApiKeyDoc>(
  {
    keyId: { type: String, required: true },
    team: { type: String, required: true },
    name: { type: String, required: true },
    role: { type: String, enum: [...ROLES], required: true },
    hash: { type: String, required: true },
    createdBy: { type: String, required: true },
    expiresAt: Date,
    revokedAt: Date,
    lastUsedAt: Date,
  },
  { timestamps: { createdAt: true, updatedAt: false } },
);
apiKeySchema.index({ keyId: 1 }, { unique: true });
apiKeySchema.index({ team: 1, createdAt: -1 });

export function apiKeyView(d: ApiKeyDoc): ApiKeyView {
  return {
    id: d.keyId,
    team: d.team,
    name: d.name,
    role: d.role,
    prefix: `tyk_${d.keyId}_`,
    createdAt: d.createdAt.toISOString(),
    createdBy: d.createdBy,
    ...(d.expiresAt ? { expiresAt: d.expiresAt.toISOString() } : {}),
    ...(d.revokedAt ? { revokedAt: d.revokedAt.toISOString() } : {}),
    ...(d.lastUsedAt ? { lastUsedAt: d.lastUsedAt.toISOString() } : {}),
  };
}

/** How stale `lastUsedAt` may get: one write per key per minute, not one per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export class ApiKeyRepo {
  private readonly ApiKey: Model<ApiKeyDoc>;
  constructor(conn: Connection) {
    this.ApiKey = (conn.models.ApiKey as Model<ApiKeyDoc>) ?? conn.model<ApiKeyDoc>("ApiKey", apiKeySchema, "api_keys");
  }
  syncIndexes() {
    return this.ApiKey.syncIndexes();
  }

  async insert(k: Omit<ApiKeyDoc, "_id" | "createdAt" | "revokedAt" | "lastUsedAt">): Promise<ApiKeyDoc> {
    return (await this.ApiKey.create(k)).toObject();
  }

  async byKeyId(keyId: string): Promise<ApiKeyDoc | null> {
    return this.ApiKey.findOne({ keyId }).lean<ApiKeyDoc>();
  }

  async list(team: string): Promise<ApiKeyDoc[]> {
    return this.ApiKey.find({ team }).sort({ createdAt: -1 }).limit(1000).lean<ApiKeyDoc[]>();
  }

  /** Revoke a team's key; revoking twice keeps the first time. 404 for another team's key. */
  async revoke(team: string, keyId: string, at = new Date()): Promise<ApiKeyDoc> {
    await this.ApiKey.updateOne({ team, keyId, revokedAt: { $exists: false } }, { $set: { revokedAt: at } });
    const doc = await this.ApiKey.findOne({ team, keyId }).lean<ApiKeyDoc>();
    if (!doc) throw notFound(`API key '${keyId}'`);
    return doc;
  }

  async touch(doc: ApiKeyDoc, now = new Date()): Promise<void> {
    if (doc.lastUsedAt && now.getTime() - new Date(doc.lastUsedAt).getTime() < LAST_USED_RESOLUTION_MS) return;
    await this.ApiKey.updateOne({ _id: doc._id }, { $set: { lastUsedAt: now } });
  }
}

// ---------- audit log ----------
export interface AuditEventDoc {
  _id: Types.ObjectId;
  at: Date;
  actor: { keyId: string; keyName: string; team: string; role: Role };
  action: AuditAction;
  team: string;
  target: string;
  request: { method: string; path: string };
}
const auditSchema = new Schema<AuditEventDoc>({
  at: { type: Date, required: true },
  actor: new Schema({ keyId: String, keyName: String, team: String, role: String }, opts),
  action: { type: String, required: true },
  team: { type: String, required: true },
  target: { type: String, default: "" },
  request: new Schema({ method: String, path: String }, opts),
});
auditSchema.index({ at: -1 });
auditSchema.index({ team: 1, at: -1 });

export function auditEventView(d: AuditEventDoc): AuditEventView {
  return {
    id: d._id.toString(),
    at: d.at.toISOString(),
    actor: { keyId: d.actor.keyId, keyName: d.actor.keyName, team: d.actor.team, role: d.actor.role },
    action: d.action,
    team: d.team,
    target: d.target,
    request: { method: d.request.method, path: d.request.path },
  };
}

export interface AuditQuery {
  team?: string;
  action?: AuditAction;
  before?: Date;
  limit: number;
}

/** Append-only: events are inserted, never updated. */
export class AuditRepo {
  private readonly Event: Model<AuditEventDoc>;
  /** Every audited request writes one event: concurrent ones share an insert (group-insert.ts). */
  private readonly inserts: GroupInsert<AuditEventDoc>;
  constructor(conn: Connection) {
    this.Event =
      (conn.models.AuditEvent as Model<AuditEventDoc>) ?? conn.model<AuditEventDoc>("AuditEvent", auditSchema, "audit_events");
    this.inserts = new GroupInsert(this.Event);
  }
  syncIndexes() {
    return this.Event.syncIndexes();
  }

  async record(e: Omit<AuditEventDoc, "_id">): Promise<void> {
    await this.inserts.insert({ ...e, _id: new Types.ObjectId() });
  }

  async list(q: AuditQuery): Promise<AuditEventDoc[]> {
    const filter: Record<string, unknown> = {};
    if (q.team) filter.team = q.team;
    if (q.action) filter.action = q.action;
    if (q.before) filter.at = { $lt: q.before };
    return this.Event.find(filter).sort({ at: -1 }).limit(q.limit).lean<AuditEventDoc[]>();
  }
}
