import type { Logger } from "@trainyard/common";
import type { LeaseSettings, NodeGateway } from "@trainyard/core";
import type { Repos } from "@trainyard/db";
import type { QueueBus } from "@trainyard/runtime";

export interface LauncherDeps {
  repos: Repos;
  bus: QueueBus;
  gateway: NodeGateway;
  logger: Logger;
  /** This process's launch lease (owner id, duration). */
  lease: LeaseSettings;
}
