import type { ProgressSampleView } from "@trainyard/common";
import { type Connection, type Model, Schema, type Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";

/**
 * A job's progress history: one document per step the monitor saw in the metrics file (the job
 * itself keeps only the latest). Kept after the job ends, for its loss/step chart; bounded per job.
 */
export interface ProgressSampleDoc {
  _id: Types.ObjectId;
  jobId: Types.ObjectId;
  attemptId: string;
  step: number;
  totalSteps?: number;
  loss?: number;
  /** When the monitor read it (the metrics file has no times). */
  at: Date;
}

const progressSchema = new Schema<ProgressSampleDoc>(
  {
    jobId: { type: Schema.Types.ObjectId, required: true },
    attemptId: { type: String, required: true },
    step: { type: Number, required: true },
    totalSteps: { type: Number, default: undefined },
    loss: { type: Number, default: undefined },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);
// Serves: a job's history in insertion order (_id), an attempt's last recorded step, pruning.
// Unique: two monitor replicas checking the same attempt at once cannot record a step twice.
progressSchema.index({ jobId: 1, attemptId: 1, step: 1 }, { unique: true });

export type NewProgressSample = Omit<ProgressSampleDoc, "_id">;

export class ProgressRepo {
  private readonly model: Model<ProgressSampleDoc>;

  constructor(conn: Connection) {
    this.model =
      (conn.models.ProgressSample as Model<ProgressSampleDoc> | undefined) ??
      conn.model<ProgressSampleDoc>("ProgressSample", progressSchema, "progress_samples");
  }

  syncIndexes(): Promise<unknown> {
    return this.model.syncIndexes();
  }

  /** Record samples in order; a step already recorded for its attempt is skipped. */
  async add(samples: NewProgressSample[]): Promise<void> {
    // One insert each (not an unordered bulk insert): FerretDB's bulk error reporting varies by backend.
    for (const s of samples) {
      try {
        await this.model.create(s);
      } catch (err) {
        if (!isDuplicateKeyError(err)) throw err;
      }
    }
  }

  /** The highest step recorded for an attempt (-Infinity when none). */
  async lastStep(jobId: Types.ObjectId, attemptId: string): Promise<number> {
    const last = await this.model.find({ jobId, attemptId }).sort({ step: -1 }).limit(1).lean<ProgressSampleDoc[]>();
    return last[0]?.step ?? Number.NEGATIVE_INFINITY;
  }

  /** A job's newest `limit` samples, oldest first (ObjectIds grow with insertion). */
  async forJob(jobId: Types.ObjectId, limit: number): Promise<ProgressSampleDoc[]> {
    const newest = await this.model.find({ jobId }).sort({ _id: -1 }).limit(limit).lean<ProgressSampleDoc[]>();
    return newest.reverse();
  }

  /** Keep only the newest `keep` samples of a job. */
  async prune(jobId: Types.ObjectId, keep: number): Promise<number> {
    const cut = await this.model.find({ jobId }).sort({ _id: -1 }).skip(keep).limit(1).lean<ProgressSampleDoc[]>();
    if (!cut[0]) return 0;
    const res = await this.model.deleteMany({ jobId, _id: { $lte: cut[0]._id } });
    return res.deletedCount;
  }
}

export function progressSampleView(d: ProgressSampleDoc): ProgressSampleView {
  return {
    at: d.at.toISOString(),
    attemptId: d.attemptId,
    step: d.step,
    ...(d.totalSteps !== undefined && d.totalSteps !== null ? { totalSteps: d.totalSteps } : {}),
    ...(d.loss !== undefined && d.loss !== null ? { loss: d.loss } : {}),
  };
}
