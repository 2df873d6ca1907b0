import type { HostAllowlist, Logger } from "@trainyard/common";
import type { Repos } from "@trainyard/db";
import type { QueueBus, Redis } from "@trainyard/runtime";
import type { Senders } from "./channels/senders";
import type { AlertingMetrics } from "./metrics";

export interface AlertingDeps {
  repos: Repos;
  bus: QueueBus;
  redis: Redis;
  /** Redis key prefix (the installation's queue prefix). */
  prefix: string;
  logger: Logger;
  metrics: AlertingMetrics;
  senders: Senders;
  allow: HostAllowlist;
  /** Base URL for links in messages. */
  publicUrl?: string;
  repeatIntervalMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}
