import type { RateCard } from "@trainyard/common";
import { type Connection, type Model, Schema, type Types } from "mongoose";

/**
 * Versions of the rate card. Every PUT /v1/pricing adds a complete version in force from its
 * `effectiveFrom`; versions are never edited, so past usage keeps the prices it ran under.
 * GPU types and node names may hold '.', which MongoDB-wire keys may not: both are lists.
 */
export interface RateCardDoc {
  _id: Types.ObjectId;
  effectiveFrom: Date;
  gpuTypes: Array<{ gpuType: string; usdPerGpuHour: number }>;
  nodes: Array<{ clusterId: string; clusterName: string; node: string; usdPerGpuHour: number }>;
  defaultUsdPerGpuHour: number;
  note?: string;
  createdAt: Date;
}

const opts = { _id: false } as const;
const rateCardSchema = new Schema<RateCardDoc>(
  {
    effectiveFrom: { type: Date, required: true },
    gpuTypes: { type: [new Schema({ gpuType: String, usdPerGpuHour: Number }, opts)], default: [] },
    nodes: {
      type: [new Schema({ clusterId: String, clusterName: String, node: String, usdPerGpuHour: Number }, opts)],
      default: [],
    },
    defaultUsdPerGpuHour: { type: Number, default: 0 },
    note: String,
  },
  { timestamps: { createdAt: true, updatedAt: false } },
);
rateCardSchema.index({ effectiveFrom: 1, createdAt: 1 });

export function toRateCard(d: RateCardDoc): RateCard {
  return {
    id: d._id.toString(),
    effectiveFrom: new Date(d.effectiveFrom),
    gpuTypes: Object.fromEntries(d.gpuTypes.map((g) => [g.gpuType, g.usdPerGpuHour])),
    nodes: d.nodes.map((n) => ({
      clusterId: n.clusterId,
      clusterName: n.clusterName,
      node: n.node,
      usdPerGpuHour: n.usdPerGpuHour,
    })),
    defaultUsdPerGpuHour: d.defaultUsdPerGpuHour ?? 0,
    ...(d.note ? { note: d.note } : {}),
    createdAt: new Date(d.createdAt),
  };
}

export class RateCardRepo {
  private readonly model: Model<RateCardDoc>;

  constructor(conn: Connection) {
    this.model =
      (conn.models.RateCard as Model<RateCardDoc>) ?? conn.model<RateCardDoc>("RateCard", rateCardSchema, "rate_cards");
  }

  async syncIndexes(): Promise<void> {
    await this.model.syncIndexes();
  }

  async add(card: Omit<RateCard, "id" | "createdAt">): Promise<RateCard> {
    const doc = await this.model.create({
      effectiveFrom: card.effectiveFrom,
      gpuTypes: Object.entries(card.gpuTypes).map(([gpuType, usdPerGpuHour]) => ({ gpuType, usdPerGpuHour })),
      nodes: card.nodes,
      defaultUsdPerGpuHour: card.defaultUsdPerGpuHour,
      ...(card.note ? { note: card.note } : {}),
    });
    return toRateCard(doc.toObject());
  }

  /** Every version, oldest effective first (a rate card has few versions). */
  async all(): Promise<RateCard[]> {
    const docs = await this.model.find({}).sort({ effectiveFrom: 1, createdAt: 1 }).limit(10_000).lean<RateCardDoc[]>();
    return docs.map(toRateCard);
  }
}
