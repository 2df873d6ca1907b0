import { type BudgetScope, type BudgetSpec, type BudgetView, conflict, notFound } from "@trainyard/common";
import { type Connection, type Model, Schema, Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";
import type { DocumentLocks } from "./locks";

export interface BudgetDoc {
  _id: Types.ObjectId;
  team: string;
  name: string;
  scope: { type: BudgetScope["type"]; project?: string; jobId?: string };
  limitUsd: number;
  period: BudgetSpec["period"];
  thresholds: number[];
  action: BudgetSpec["action"];
  enabled: boolean;
  /** Bumped by every update: threshold claims are per revision, so a raised limit alerts afresh. */
  revision: number;
  /** The cost service's last evaluation (metrics read it; the API recomputes live). */
  state?: { period: string; spendUsd: number; forecastUsd?: number; evaluatedAt: Date };
  createdAt: Date;
  updatedAt: Date;
}

/**
 * "This already happened" records: one per (budget, revision, period, threshold) alert, forecast
 * alert or stop. Claimed by inserting under a unique key — inserts are atomic even where updates
 * are not (FerretDB v1) — so of any number of cost replicas exactly one acts on each.
 */
export interface BudgetClaimDoc {
  _id: Types.ObjectId;
  key: string;
  budgetId?: string;
  jobId?: string;
  kind: "threshold" | "forecast" | "stop";
  period: string;
  threshold?: number;
  spendUsd?: number;
  createdAt: Date;
}

const opts = { _id: false } as const;
const budgetSchema = new Schema<BudgetDoc>(
  {
    team: { type: String, required: true },
    name: { type: String, required: true },
    scope: new Schema({ type: { type: String, required: true }, project: String, jobId: String }, opts),
    limitUsd: { type: Number, required: true },
    period: { type: String, enum: ["monthly", "total"], required: true },
    thresholds: { type: [Number], default: [] },
    action: { type: String, enum: ["alert", "stop"], required: true },
    enabled: { type: Boolean, default: true },
    revision: { type: Number, default: 1 },
    state: new Schema({ period: String, spendUsd: Number, forecastUsd: Number, evaluatedAt: Date }, opts),
  },
  { timestamps: true, minimize: false },
);
budgetSchema.index({ team: 1, name: 1 }, { unique: true });

const claimSchema = new Schema<BudgetClaimDoc>(
  {
    key: { type: String, required: true },
    budgetId: String,
    jobId: String,
    kind: { type: String, enum: ["threshold", "forecast", "stop"], required: true },
    period: { type: String, required: true },
    threshold: Number,
    spendUsd: Number,
  },
  { timestamps: { createdAt: true, updatedAt: false } },
);
claimSchema.index({ key: 1 }, { unique: true });

export function budgetView(d: BudgetDoc): BudgetView {
  const scope: BudgetScope =
    d.scope.type === "project"
      ? { type: "project", project: d.scope.project! }
      : d.scope.type === "job"
        ? { type: "job", jobId: d.scope.jobId! }
        : { type: "team" };
  return {
    id: d._id.toString(),
    team: d.team,
    name: d.name,
    scope,
    limitUsd: d.limitUsd,
    period: d.period,
    thresholds: d.thresholds,
    action: d.action,
    enabled: d.enabled,
    revision: d.revision ?? 1,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

function scopeDoc(s: BudgetScope): BudgetDoc["scope"] {
  if (s.type === "project") return { type: "project", project: s.project };
  if (s.type === "job") return { type: "job", jobId: s.jobId };
  return { type: "team" };
}

export class BudgetRepo {
  private readonly budgets: Model<BudgetDoc>;
  private readonly claims: Model<BudgetClaimDoc>;

  constructor(
    conn: Connection,
    private readonly locks: DocumentLocks,
  ) {
    this.budgets = (conn.models.Budget as Model<BudgetDoc>) ?? conn.model<BudgetDoc>("Budget", budgetSchema, "budgets");
    this.claims =
      (conn.models.BudgetClaim as Model<BudgetClaimDoc>) ??
      conn.model<BudgetClaimDoc>("BudgetClaim", claimSchema, "budget_claims");
  }

  async syncIndexes(): Promise<void> {
    await Promise.all([this.budgets.syncIndexes(), this.claims.syncIndexes()]);
  }

  async create(team: string, spec: BudgetSpec): Promise<BudgetDoc> {
    try {
      const doc = await this.budgets.create({ team, ...spec, scope: scopeDoc(spec.scope), revision: 1 });
      return doc.toObject();
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict(`a budget named '${spec.name}' already exists`);
      throw err;
    }
  }

  async list(team: string): Promise<BudgetDoc[]> {
    return this.budgets.find({ team }).sort({ name: 1 }).lean<BudgetDoc[]>();
  }

  async getForTeam(team: string, id: string): Promise<BudgetDoc> {
    const doc =
      Types.ObjectId.isValid(id) && /^[0-9a-f]{24}$/.test(id)
        ? await this.budgets.findOne({ _id: id, team }).lean<BudgetDoc>()
        : null;
    if (!doc) throw notFound(`budget '${id}'`);
    return doc;
  }

  async byId(id: string): Promise<BudgetDoc | null> {
    if (!/^[0-9a-f]{24}$/.test(id)) return null;
    return this.budgets.findById(id).lean<BudgetDoc>();
  }

  /** Replace a budget's settings; its revision goes up, so its thresholds alert afresh. */
  async update(team: string, id: string, spec: BudgetSpec): Promise<BudgetDoc> {
    const existing = await this.getForTeam(team, id);
    return this.locks.withLock(`budget:${id}`, async () => {
      try {
        const doc = await this.budgets
          .findOneAndUpdate(
            { _id: existing._id, team },
            { $set: { ...spec, scope: scopeDoc(spec.scope) }, $inc: { revision: 1 } },
            { returnDocument: "after" },
          )
          .lean<BudgetDoc>();
        if (!doc) throw notFound(`budget '${id}'`);
        return doc;
      } catch (err) {
        if (isDuplicateKeyError(err)) throw conflict(`a budget named '${spec.name}' already exists`);
        throw err;
      }
    });
  }

  async delete(team: string, id: string): Promise<void> {
    const existing = await this.getForTeam(team, id);
    await this.locks.withLock(`budget:${id}`, () => this.budgets.deleteOne({ _id: existing._id, team }));
  }

  /** Store the latest evaluation unless a later one is already stored. */
  async recordState(id: Types.ObjectId, state: NonNullable<BudgetDoc["state"]>): Promise<void> {
    await this.locks.withLock(`budget:${id.toString()}`, async () => {
      const cur = await this.budgets.findById(id, { state: 1 }).lean<Pick<BudgetDoc, "state">>();
      if (!cur) return;
      if (cur.state?.evaluatedAt && new Date(cur.state.evaluatedAt).getTime() > state.evaluatedAt.getTime()) return;
      await this.budgets.updateOne({ _id: id }, { $set: { state } });
    });
  }

  /** Every enabled budget of every team (the cost service evaluates them all). */
  async listEnabled(): Promise<BudgetDoc[]> {
    return this.budgets.find({ enabled: true }).limit(10_000).lean<BudgetDoc[]>();
  }

  /** Enabled budgets of a team that cover a job of `project` (team-wide or that project). */
  async coveringNewJob(team: string, project: string): Promise<BudgetDoc[]> {
    const all = await this.budgets.find({ team, enabled: true }).lean<BudgetDoc[]>();
    return all.filter((b) => b.scope.type === "team" || (b.scope.type === "project" && b.scope.project === project));
  }

  /** Insert a claim; true for the one caller that inserted it, false for everyone after. */
  async claim(claim: Omit<BudgetClaimDoc, "_id" | "createdAt">): Promise<boolean> {
    try {
      await this.claims.create(claim);
      return true;
    } catch (err) {
      if (isDuplicateKeyError(err)) return false;
      throw err;
    }
  }

  async claimsFor(budgetId: string): Promise<BudgetClaimDoc[]> {
    return this.claims.find({ budgetId }).sort({ createdAt: 1 }).lean<BudgetClaimDoc[]>();
  }
}
