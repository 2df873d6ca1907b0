import type { apiConfigShape, HostAllowlist, Logger } from "@trainyard/common";
import type { NodeGateway } from "@trainyard/core";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";
import type { z } from "zod";
import type { ConfigCache } from "./config-cache";

export type ApiConfig = z.infer<z.ZodObject<typeof apiConfigShape>>;

/** What the use cases need; built once per running API (no module-level state). */
export interface ApiDeps {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
  /** Poll interval of followed logs (SSE). */
  logPollMs: number;
  /** What every submit reads and rarely changes (API_CONFIG_CACHE_MS); forgotten on writes through this replica. */
  config: ConfigCache;
  /** Live log followers, ended when the API closes so the HTTP server can stop. */
  streams: Set<() => void>;
  /** API_ADMIN_TEAM: the platform team, the only one whose keys may be operators. */
  platformTeam: string;
  /** ALERT_ALLOWED_HOSTS: private hosts/CIDRs alert channel URLs may point at (none when absent). */
  alertAllowlist?: HostAllowlist;
}
