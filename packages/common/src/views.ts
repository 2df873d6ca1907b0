/**
 * Response shapes the API returns and its clients (the CLI) read: one definition for both ends.
 */

/** A registered checkpoint (GET /v1/jobs/:id/checkpoints). */
export interface CheckpointView {
  id: string;
  jobId: string;
  attemptId: string;
  attemptNumber: number;
  step: number;
  node: string;
  path: string;
  uri: string;
  size: number;
  /** The object-store copy, once made. */
  storedUri?: string;
  metrics: Record<string, number>;
  state: "complete" | "deleting";
  createdAt: string;
}

/** One group of GET /v1/costs (a team, project or job). */
export interface CostGroup {
  key: string;
  team: string;
  project?: string;
  job?: { id: string; name: string; status: string; costUpdatedAt?: string };
  usd: number;
  gpuHours: number;
  jobs: number;
  byGpuType: Array<{ gpuType: string; usd: number; gpuHours: number }>;
}

/** GET /v1/costs. */
export interface CostReport {
  groupBy: string;
  from: string;
  to: string;
  currency: "USD";
  totalUsd: number;
  totalGpuHours: number;
  items: CostGroup[];
}
