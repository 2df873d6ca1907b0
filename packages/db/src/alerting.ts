import {
  type AlertChannelSpec,
  type AlertChannelView,
  type AlertDeliveryView,
  type AlertType,
  type AttemptOutcome,
  type ChannelType,
  conflict,
  DEFAULT_CHANNEL_EVENTS,
  type DeliveryState,
  notFound,
  type SecretBox,
  type Severity,
} from "@trainyard/common";
import { type Connection, type Model, Schema, Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";
import type { DocumentLocks } from "./locks";

// ---------- channels ----------

export interface AlertChannelDoc {
  _id: Types.ObjectId;
  team: string;
  name: string;
  type: ChannelType;
  /** Webhook URL (plain). A Slack URL holds a token: it is only stored sealed, with its origin shown. */
  url?: string;
  urlOrigin?: string;
  /** AES-256-GCM envelope of the webhook signing secret, or of the Slack URL; never returned. */
  sealed?: string;
  to?: string[];
  events: AlertType[];
  minSeverity: Severity;
  repeatIntervalSeconds?: number;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface ChannelSecrets {
  /** Where to send: the webhook URL, or the Slack URL unsealed. */
  url?: string;
  /** The Standard Webhooks secret ("whsec_…"). */
  secret?: string;
}

const channelSchema = new Schema<AlertChannelDoc>(
  {
    team: { type: String, required: true },
    name: { type: String, required: true },
    type: { type: String, enum: ["webhook", "slack", "email"], required: true },
    url: String,
    urlOrigin: String,
    sealed: String,
    to: { type: [String], default: undefined },
    events: { type: [String], default: [] },
    minSeverity: { type: String, enum: ["info", "warning", "critical"], default: "info" },
    repeatIntervalSeconds: Number,
    enabled: { type: Boolean, default: true },
  },
  { timestamps: true, minimize: false },
);
channelSchema.index({ team: 1, name: 1 }, { unique: true });

export function alertChannelView(d: AlertChannelDoc): AlertChannelView {
  return {
    id: d._id.toString(),
    team: d.team,
    name: d.name,
    type: d.type,
    ...(d.type === "webhook" && d.url ? { url: d.url, hasSecret: Boolean(d.sealed) } : {}),
    ...(d.type === "slack" && d.urlOrigin ? { url: d.urlOrigin } : {}),
    ...(d.type === "email" ? { to: d.to ?? [] } : {}),
    events: d.events,
    minSeverity: d.minSeverity,
    ...(d.repeatIntervalSeconds !== undefined && d.repeatIntervalSeconds !== null
      ? { repeatIntervalSeconds: d.repeatIntervalSeconds }
      : {}),
    enabled: d.enabled,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

// ---------- deliveries and attempts (the delivery log) ----------

export interface AlertDeliveryDoc {
  _id: Types.ObjectId;
  /** (event, channel): makes routing one event idempotent under redelivery. */
  key: string;
  team: string;
  type: AlertType;
  severity: Severity;
  message: string;
  dedupKey: string;
  /** What the message shows (job, project, cost, link…) as JSON, resolved when the event was routed. */
  data: string;
  jobId?: string;
  budgetId?: string;
  clusterId?: string;
  channelId: string;
  channelName: string;
  channelType: ChannelType;
  state: DeliveryState;
  attempts: number;
  eventAt: Date;
  deliveredAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface AlertAttemptDoc {
  _id: Types.ObjectId;
  deliveryId: string;
  n: number;
  at: Date;
  outcome: AttemptOutcome;
  status?: number;
  error?: string;
  durationMs?: number;
  nextAttemptAt?: Date;
}

const deliverySchema = new Schema<AlertDeliveryDoc>(
  {
    key: { type: String, required: true },
    team: { type: String, required: true },
    type: { type: String, required: true },
    severity: { type: String, required: true },
    message: { type: String, default: "" },
    dedupKey: { type: String, required: true },
    data: { type: String, default: "{}" },
    jobId: String,
    budgetId: String,
    clusterId: String,
    channelId: { type: String, required: true },
    channelName: { type: String, required: true },
    channelType: { type: String, required: true },
    state: { type: String, enum: ["pending", "delivered", "failed", "suppressed"], required: true },
    attempts: { type: Number, default: 0 },
    eventAt: { type: Date, required: true },
    deliveredAt: Date,
  },
  { timestamps: true, minimize: false },
);
deliverySchema.index({ key: 1 }, { unique: true });
deliverySchema.index({ team: 1, createdAt: -1 });

const attemptSchema = new Schema<AlertAttemptDoc>({
  deliveryId: { type: String, required: true },
  n: { type: Number, required: true },
  at: { type: Date, required: true },
  outcome: { type: String, enum: ["sending", "delivered", "retry", "failed"], required: true },
  status: Number,
  error: String,
  durationMs: Number,
  nextAttemptAt: Date,
});
// One record per attempt number: inserting it is how a worker claims the attempt.
attemptSchema.index({ deliveryId: 1, n: 1 }, { unique: true });

export interface ListDeliveriesQuery {
  channelId?: string;
  state?: DeliveryState;
  type?: AlertType;
  jobId?: string;
  limit: number;
  offset: number;
}

const isDup = (err: unknown) => isDuplicateKeyError(err);

export class AlertRepo {
  private readonly channels: Model<AlertChannelDoc>;
  private readonly deliveries: Model<AlertDeliveryDoc>;
  private readonly attempts: Model<AlertAttemptDoc>;

  constructor(
    conn: Connection,
    private readonly box: SecretBox | undefined,
    private readonly locks: DocumentLocks,
  ) {
    this.channels =
      (conn.models.AlertChannel as Model<AlertChannelDoc>) ??
      conn.model<AlertChannelDoc>("AlertChannel", channelSchema, "alert_channels");
    this.deliveries =
      (conn.models.AlertDelivery as Model<AlertDeliveryDoc>) ??
      conn.model<AlertDeliveryDoc>("AlertDelivery", deliverySchema, "alert_deliveries");
    this.attempts =
      (conn.models.AlertAttempt as Model<AlertAttemptDoc>) ??
      conn.model<AlertAttemptDoc>("AlertAttempt", attemptSchema, "alert_attempts");
  }

  async syncIndexes(): Promise<void> {
    await Promise.all([this.channels.syncIndexes(), this.deliveries.syncIndexes(), this.attempts.syncIndexes()]);
  }

  private needBox(): SecretBox {
    if (!this.box) throw new Error("this service has no TRAINYARD_SECRET_KEY to seal or open channel secrets");
    return this.box;
  }

  private fromSpec(spec: AlertChannelSpec, id: Types.ObjectId, keepSealed?: string): Partial<AlertChannelDoc> {
    const base = {
      name: spec.name,
      type: spec.type,
      events: spec.events ?? DEFAULT_CHANNEL_EVENTS,
      minSeverity: spec.minSeverity,
      enabled: spec.enabled,
      ...(spec.repeatIntervalSeconds !== undefined ? { repeatIntervalSeconds: spec.repeatIntervalSeconds } : {}),
    };
    const aad = `alert-channel:${id.toString()}`;
    if (spec.type === "webhook") {
      const sealed = spec.secret !== undefined ? this.needBox().seal(spec.secret, aad) : keepSealed;
      return { ...base, url: spec.url, ...(sealed ? { sealed } : {}) };
    }
    if (spec.type === "slack")
      return { ...base, urlOrigin: new URL(spec.url).origin, sealed: this.needBox().seal(spec.url, aad) };
    return { ...base, to: spec.to };
  }

  /** Create a channel; the webhook secret and the Slack URL are sealed (the record id bound in). */
  async createChannel(team: string, spec: AlertChannelSpec): Promise<AlertChannelDoc> {
    const _id = new Types.ObjectId();
    try {
      const doc = await this.channels.create({ _id, team, ...this.fromSpec(spec, _id) });
      return doc.toObject();
    } catch (err) {
      if (isDup(err)) throw conflict(`an alert channel named '${spec.name}' already exists`);
      throw err;
    }
  }

  /** Replace a channel; a webhook without a new `secret` keeps its current one. */
  async replaceChannel(team: string, id: string, spec: AlertChannelSpec): Promise<AlertChannelDoc> {
    const existing = await this.getChannel(team, id);
    if (existing.type !== spec.type) throw conflict(`channel '${existing.name}' is a ${existing.type} channel; create a new one`);
    return this.locks.withLock(`alert-channel:${id}`, async () => {
      const next = this.fromSpec(spec, existing._id, existing.type === "webhook" ? existing.sealed : undefined);
      try {
        const unset: Record<string, 1> = {};
        if (spec.repeatIntervalSeconds === undefined) unset.repeatIntervalSeconds = 1;
        const doc = await this.channels
          .findOneAndUpdate(
            { _id: existing._id, team },
            { $set: next, ...(Object.keys(unset).length ? { $unset: unset } : {}) },
            { returnDocument: "after" },
          )
          .lean<AlertChannelDoc>();
        if (!doc) throw notFound(`alert channel '${id}'`);
        return doc;
      } catch (err) {
        if (isDup(err)) throw conflict(`an alert channel named '${spec.name}' already exists`);
        throw err;
      }
    });
  }

  async deleteChannel(team: string, id: string): Promise<void> {
    const existing = await this.getChannel(team, id);
    await this.locks.withLock(`alert-channel:${id}`, () => this.channels.deleteOne({ _id: existing._id, team }));
  }

  async getChannel(team: string, id: string): Promise<AlertChannelDoc> {
    const doc = /^[0-9a-f]{24}$/.test(id) ? await this.channels.findOne({ _id: id, team }).lean<AlertChannelDoc>() : null;
    if (!doc) throw notFound(`alert channel '${id}'`);
    return doc;
  }

  async channelById(id: string): Promise<AlertChannelDoc | null> {
    if (!/^[0-9a-f]{24}$/.test(id)) return null;
    return this.channels.findById(id).lean<AlertChannelDoc>();
  }

  async listChannels(team: string): Promise<AlertChannelDoc[]> {
    return this.channels.find({ team }).sort({ name: 1 }).lean<AlertChannelDoc[]>();
  }

  /** Unseal what a sender needs. Only the alerting service calls this, and never logs the result. */
  openSecrets(channel: AlertChannelDoc): ChannelSecrets {
    const aad = `alert-channel:${channel._id.toString()}`;
    if (channel.type === "webhook") {
      return {
        ...(channel.url ? { url: channel.url } : {}),
        ...(channel.sealed ? { secret: this.needBox().open(channel.sealed, aad) } : {}),
      };
    }
    if (channel.type === "slack" && channel.sealed) return { url: this.needBox().open(channel.sealed, aad) };
    return {};
  }

  // ----- deliveries -----

  async deliveryByKey(key: string): Promise<AlertDeliveryDoc | null> {
    return this.deliveries.findOne({ key }).lean<AlertDeliveryDoc>();
  }

  async deliveryById(id: string): Promise<AlertDeliveryDoc | null> {
    if (!/^[0-9a-f]{24}$/.test(id)) return null;
    return this.deliveries.findById(id).lean<AlertDeliveryDoc>();
  }

  /** Insert a delivery; returns the stored one (the existing one when this event/channel was routed before). */
  async createDelivery(
    d: Omit<AlertDeliveryDoc, "_id" | "createdAt" | "updatedAt">,
  ): Promise<{ doc: AlertDeliveryDoc; created: boolean }> {
    try {
      const doc = await this.deliveries.create(d);
      return { doc: doc.toObject(), created: true };
    } catch (err) {
      if (!isDup(err)) throw err;
      const doc = await this.deliveryByKey(d.key);
      if (!doc) throw err;
      return { doc, created: false };
    }
  }

  /** Claim attempt n of a delivery: true for exactly one caller. */
  async claimAttempt(deliveryId: string, n: number, at: Date): Promise<boolean> {
    try {
      await this.attempts.create({ deliveryId, n, at, outcome: "sending" });
      return true;
    } catch (err) {
      if (isDup(err)) return false;
      throw err;
    }
  }

  async attemptOf(deliveryId: string, n: number): Promise<AlertAttemptDoc | null> {
    return this.attempts.findOne({ deliveryId, n }).lean<AlertAttemptDoc>();
  }

  /** Record how attempt n ended, and move the delivery on. */
  async finishAttempt(
    deliveryId: string,
    n: number,
    result: {
      outcome: Exclude<AttemptOutcome, "sending">;
      status?: number;
      error?: string;
      durationMs: number;
      nextAttemptAt?: Date;
    },
  ): Promise<void> {
    await this.locks.withLock(`alert-attempt:${deliveryId}:${n}`, () =>
      this.attempts.updateOne(
        { deliveryId, n },
        {
          $set: {
            outcome: result.outcome,
            durationMs: result.durationMs,
            ...(result.status !== undefined ? { status: result.status } : {}),
            ...(result.error !== undefined ? { error: result.error.slice(0, 1000) } : {}),
            ...(result.nextAttemptAt ? { nextAttemptAt: result.nextAttemptAt } : {}),
          },
        },
      ),
    );
    const state: DeliveryState =
      result.outcome === "delivered" ? "delivered" : result.outcome === "failed" ? "failed" : "pending";
    await this.locks.withLock(`alert-delivery:${deliveryId}`, () =>
      this.deliveries.updateOne(
        { _id: deliveryId, state: "pending" },
        { $set: { state, attempts: n, ...(state === "delivered" ? { deliveredAt: new Date() } : {}) } },
      ),
    );
  }

  async listDeliveries(
    team: string,
    q: ListDeliveriesQuery,
  ): Promise<{ items: Array<AlertDeliveryDoc & { attemptLog: AlertAttemptDoc[] }>; total: number }> {
    const filter: Record<string, unknown> = { team };
    if (q.channelId) filter.channelId = q.channelId;
    if (q.state) filter.state = q.state;
    if (q.type) filter.type = q.type;
    if (q.jobId) filter.jobId = q.jobId;
    const [items, total] = await Promise.all([
      this.deliveries.find(filter).sort({ createdAt: -1, _id: -1 }).skip(q.offset).limit(q.limit).lean<AlertDeliveryDoc[]>(),
      this.deliveries.countDocuments(filter),
    ]);
    const ids = items.map((d) => d._id.toString());
    const attempts = ids.length ? await this.attempts.find({ deliveryId: { $in: ids } }).lean<AlertAttemptDoc[]>() : [];
    return {
      items: items.map((d) => ({
        ...d,
        attemptLog: attempts.filter((a) => a.deliveryId === d._id.toString()).sort((a, b) => a.n - b.n),
      })),
      total,
    };
  }
}

const iso = (d: Date | string | undefined) => (d ? new Date(d).toISOString() : undefined);

export function alertDeliveryView(d: AlertDeliveryDoc & { attemptLog: AlertAttemptDoc[] }): AlertDeliveryView {
  return {
    id: d._id.toString(),
    team: d.team,
    type: d.type,
    severity: d.severity,
    message: d.message,
    dedupKey: d.dedupKey,
    channel: { id: d.channelId, name: d.channelName, type: d.channelType },
    ...(d.jobId ? { jobId: d.jobId } : {}),
    ...(d.budgetId ? { budgetId: d.budgetId } : {}),
    ...(d.clusterId ? { clusterId: d.clusterId } : {}),
    state: d.state,
    attempts: d.attemptLog.map((a) => ({
      n: a.n,
      at: iso(a.at)!,
      outcome: a.outcome,
      ...(a.status !== undefined && a.status !== null ? { status: a.status } : {}),
      ...(a.error ? { error: a.error } : {}),
      ...(a.durationMs !== undefined && a.durationMs !== null ? { durationMs: a.durationMs } : {}),
      ...(a.nextAttemptAt ? { nextAttemptAt: iso(a.nextAttemptAt)! } : {}),
    })),
    eventAt: iso(d.eventAt)!,
    createdAt: iso(d.createdAt)!,
    ...(d.deliveredAt ? { deliveredAt: iso(d.deliveredAt)! } : {}),
  };
}
