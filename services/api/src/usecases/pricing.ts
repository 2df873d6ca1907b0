import { badRequest, type RateCard, type rateCardInputSchema, sortRateCards, UserError } from "@trainyard/common";
import type { z } from "zod";
import type { ApiDeps } from "../context";

export interface RateCardView {
  id: string;
  effectiveFrom: string;
  gpuTypes: Record<string, number>;
  nodes: Array<{ cluster: string; clusterId: string; node: string; usdPerGpuHour: number }>;
  defaultUsdPerGpuHour: number;
  note?: string;
  createdAt: string;
}

function view(c: RateCard): RateCardView {
  return {
    id: c.id,
    effectiveFrom: c.effectiveFrom.toISOString(),
    gpuTypes: c.gpuTypes,
    nodes: c.nodes.map((n) => ({ cluster: n.clusterName, clusterId: n.clusterId, node: n.node, usdPerGpuHour: n.usdPerGpuHour })),
    defaultUsdPerGpuHour: c.defaultUsdPerGpuHour,
    ...(c.note ? { note: c.note } : {}),
    createdAt: c.createdAt.toISOString(),
  };
}

/** The rate card in force now, the ones scheduled after it, and every version (oldest first). */
export async function getPricing(
  deps: ApiDeps,
): Promise<{ current: RateCardView | null; scheduled: RateCardView[]; versions: RateCardView[] }> {
  const cards = sortRateCards(await deps.repos.rateCards.all());
  const now = Date.now();
  const past = cards.filter((c) => c.effectiveFrom.getTime() <= now);
  const current = past[past.length - 1];
  return {
    current: current ? view(current) : null,
    scheduled: cards.filter((c) => c.effectiveFrom.getTime() > now).map(view),
    versions: cards.map(view),
  };
}

/**
 * Put a new rate card in force from `effectiveFrom` (default now). It is a complete card, not a
 * patch; usage before `effectiveFrom` keeps the prices of the card it ran under.
 */
export async function putPricing(deps: ApiDeps, team: string, spec: z.output<typeof rateCardInputSchema>): Promise<RateCardView> {
  const nodes: RateCard["nodes"] = [];
  for (const o of spec.nodes) {
    let cluster: Awaited<ReturnType<typeof deps.repos.clusters.getForTeam>>;
    try {
      cluster = await deps.repos.clusters.getForTeam(team, o.cluster);
    } catch (err) {
      if (err instanceof UserError && err.status === 404) throw badRequest(`nodes: cluster '${o.cluster}' not found`);
      throw err;
    }
    if (!cluster.nodes.some((n) => n.name === o.node))
      throw badRequest(`nodes: cluster '${cluster.name}' has no node '${o.node}'`);
    nodes.push({ clusterId: cluster._id.toString(), clusterName: cluster.name, node: o.node, usdPerGpuHour: o.usdPerGpuHour });
  }
  const card = await deps.repos.rateCards.add({
    effectiveFrom: spec.effectiveFrom ? new Date(spec.effectiveFrom) : new Date(),
    gpuTypes: spec.gpuTypes,
    nodes,
    defaultUsdPerGpuHour: spec.defaultUsdPerGpuHour,
    ...(spec.note ? { note: spec.note } : {}),
  });
  deps.logger.info({ rateCardId: card.id, effectiveFrom: card.effectiveFrom.toISOString() }, "rate card added");
  return view(card);
}
