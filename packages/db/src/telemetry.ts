import type { GpuSample, TelemetrySampleView } from "@trainyard/common";
import { type Connection, type Model, Schema, type Types } from "mongoose";

/**
 * GPU and process samples of running attempts, one document per node per monitor check. Kept
 * after the job ends, for its charts; bounded per job (the oldest go first, see prune).
 */
export interface TelemetryDoc {
  _id: Types.ObjectId;
  jobId: Types.ObjectId;
  attemptId: string;
  node: string;
  at: Date;
  /** The attempt's GPUs on the node (by the node's nvidia-smi index). */
  gpus: GpuSample[];
  proc?: { cpuPct: number; rssMiB: number };
}

const telemetrySchema = new Schema<TelemetryDoc>(
  {
    jobId: { type: Schema.Types.ObjectId, required: true },
    attemptId: { type: String, required: true },
    node: { type: String, required: true },
    at: { type: Date, required: true },
    gpus: { type: Schema.Types.Mixed, default: [] },
    proc: { type: Schema.Types.Mixed, default: undefined },
  },
  { versionKey: false },
);
// Serves: a job's samples in time order (GET /v1/jobs/:id/metrics, the idle-GPU window, pruning).
telemetrySchema.index({ jobId: 1, at: 1 });

export type NewTelemetry = Omit<TelemetryDoc, "_id">;

export class TelemetryRepo {
  private readonly model: Model<TelemetryDoc>;

  constructor(conn: Connection) {
    this.model =
      (conn.models.Telemetry as Model<TelemetryDoc> | undefined) ??
      conn.model<TelemetryDoc>("Telemetry", telemetrySchema, "telemetry");
  }

  syncIndexes(): Promise<unknown> {
    return this.model.syncIndexes();
  }

  async add(samples: NewTelemetry[]): Promise<void> {
    if (samples.length) await this.model.insertMany(samples);
  }

  /** A job's samples in time order: since `since`, of one node if given, the newest `limit`. */
  async forJob(jobId: Types.ObjectId, opts: { since?: Date; node?: string; limit: number }): Promise<TelemetryDoc[]> {
    const filter = {
      jobId,
      ...(opts.since ? { at: { $gte: opts.since } } : {}),
      ...(opts.node ? { node: opts.node } : {}),
    };
    const newest = await this.model.find(filter).sort({ at: -1 }).limit(opts.limit).lean<TelemetryDoc[]>();
    return newest.reverse();
  }

  /** Keep only the newest `keep` samples of a job. */
  async prune(jobId: Types.ObjectId, keep: number): Promise<number> {
    const cut = await this.model.find({ jobId }).sort({ at: -1 }).skip(keep).limit(1).lean<TelemetryDoc[]>();
    if (!cut[0]) return 0;
    const res = await this.model.deleteMany({ jobId, at: { $lte: cut[0].at } });
    return res.deletedCount;
  }
}

export function telemetryView(d: TelemetryDoc): TelemetrySampleView {
  return {
    at: d.at.toISOString(),
    attemptId: d.attemptId,
    node: d.node,
    gpus: d.gpus,
    ...(d.proc ? { proc: d.proc } : {}),
  };
}
