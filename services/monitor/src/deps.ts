import type { Logger } from "@trainyard/common";
import type { NodeGateway } from "@trainyard/core";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";

export interface MonitorDeps {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
  intervalMs: number;
  lostAfterMisses: number;
}
