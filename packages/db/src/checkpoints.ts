import { type Connection, type Model, Schema, Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";

/**
 * The checkpoint registry. A checkpoint is `complete` once the training script announced it and
 * Trainyard confirmed it exists on storage; deletion is two-phase (`deleting` → removed from
 * storage → record removed), so a crash between the phases leaves a record the next GC finishes.
 */
export type CheckpointState = "complete" | "deleting";

export interface CheckpointDoc {
  _id: Types.ObjectId;
  jobId: Types.ObjectId;
  team: string;
  attemptId: string;
  attemptNumber: number;
  step: number;
  /** Node whose filesystem holds it (node storage). */
  node: string;
  /** Absolute path on that node. */
  path: string;
  /** Where it lives: node://<node><path>, or an object-store URI once copied there. */
  uri: string;
  size: number;
  /** The object-store copy (s3://…, az://…, gs://…), once made. */
  storedUri?: string;
  /** Numeric metrics announced with it (stored as a list: metric names may contain '.'). */
  metrics: Array<{ name: string; value: number }>;
  state: CheckpointState;
  createdAt: Date;
  updatedAt: Date;
}

const checkpointSchema = new Schema<CheckpointDoc>(
  {
    jobId: { type: Schema.Types.ObjectId, required: true },
    team: { type: String, required: true },
    attemptId: { type: String, required: true },
    attemptNumber: { type: Number, required: true },
    step: { type: Number, required: true },
    node: { type: String, required: true },
    path: { type: String, required: true },
    uri: { type: String, required: true },
    size: { type: Number, default: 0 },
    storedUri: String,
    metrics: { type: [new Schema({ name: String, value: Number }, { _id: false })], default: [] },
    state: { type: String, enum: ["complete", "deleting"], required: true },
  },
  { timestamps: true },
);
// One record per checkpoint location: a repeated announcement is not a second checkpoint.
checkpointSchema.index({ jobId: 1, path: 1 }, { unique: true });
checkpointSchema.index({ jobId: 1, state: 1, step: -1 });

export interface NewCheckpoint {
  jobId: Types.ObjectId;
  team: string;
  attemptId: string;
  attemptNumber: number;
  step: number;
  node: string;
  path: string;
  uri: string;
  size: number;
  metrics: Record<string, number>;
}

export class CheckpointRepo {
  private readonly model: Model<CheckpointDoc>;

  constructor(conn: Connection) {
    this.model =
      (conn.models.Checkpoint as Model<CheckpointDoc> | undefined) ??
      conn.model<CheckpointDoc>("Checkpoint", checkpointSchema, "checkpoints");
  }

  /** Record a confirmed checkpoint; returns null when it was already registered. */
  async registerComplete(c: NewCheckpoint): Promise<CheckpointDoc | null> {
    try {
      const doc = await this.model.create({
        ...c,
        metrics: Object.entries(c.metrics).map(([name, value]) => ({ name, value })),
        state: "complete",
      });
      return doc.toObject() as unknown as CheckpointDoc;
    } catch (err) {
      if (isDuplicateKeyError(err)) return null;
      throw err;
    }
  }

  async setStored(id: Types.ObjectId, storedUri: string): Promise<void> {
    await this.model.updateOne({ _id: id }, { $set: { storedUri } });
  }

  async byId(id: Types.ObjectId): Promise<CheckpointDoc | null> {
    return this.model.findById(id).lean<CheckpointDoc>();
  }

  async isRegistered(jobId: Types.ObjectId, path: string): Promise<boolean> {
    return (await this.model.countDocuments({ jobId, path })) > 0;
  }

  /** Complete checkpoints of a job, newest (highest step) first. */
  async listComplete(jobId: Types.ObjectId): Promise<CheckpointDoc[]> {
    return this.model.find({ jobId, state: "complete" }).sort({ step: -1, createdAt: -1 }).lean<CheckpointDoc[]>();
  }

  async listAll(jobId: Types.ObjectId): Promise<CheckpointDoc[]> {
    return this.model.find({ jobId }).sort({ step: -1, createdAt: -1 }).lean<CheckpointDoc[]>();
  }

  async latestComplete(jobId: Types.ObjectId): Promise<CheckpointDoc | null> {
    return this.model.findOne({ jobId, state: "complete" }).sort({ step: -1, createdAt: -1 }).lean<CheckpointDoc>();
  }

  async get(jobId: Types.ObjectId, id: string): Promise<CheckpointDoc | null> {
    if (!/^[0-9a-f]{24}$/.test(id)) return null;
    return this.model.findOne({ _id: new Types.ObjectId(id), jobId }).lean<CheckpointDoc>();
  }

  /** Phase 1 of deletion. Returns false when it was not complete (already being deleted, or gone). */
  async markDeleting(id: Types.ObjectId): Promise<boolean> {
    const res = await this.model.updateOne({ _id: id, state: "complete" }, { $set: { state: "deleting" } });
    return res.modifiedCount > 0;
  }

  /** Records left in phase 1 (e.g. by a crash), to be finished by the next GC. */
  async listDeleting(jobId?: Types.ObjectId): Promise<CheckpointDoc[]> {
    return this.model.find({ state: "deleting", ...(jobId ? { jobId } : {}) }).lean<CheckpointDoc[]>();
  }

  /** Phase 3 of deletion: the storage copy is gone, drop the record. */
  async remove(id: Types.ObjectId): Promise<void> {
    await this.model.deleteOne({ _id: id, state: "deleting" });
  }

  async syncIndexes(): Promise<void> {
    await this.model.syncIndexes();
  }
}
