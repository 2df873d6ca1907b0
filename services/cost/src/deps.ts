import type { Logger } from "@trainyard/common";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";

export interface CostDeps {
  repos: Repos;
  bus: QueueBus;
  logger: Logger;
  intervalMs: number;
}
