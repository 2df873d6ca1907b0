import { type Logger, secretBoxFromConfig } from "@trainyard/common";
import { createRepos, RedisDocumentLocks, type Repos } from "@trainyard/db";
import type { Redis } from "@trainyard/runtime";
import { SshPool } from "@trainyard/ssh";
import type { Connection } from "mongoose";
import { NodeGateway } from "./node-gateway";

export interface NodeAccessConfig {
  TRAINYARD_SECRET_KEY: string;
  TRAINYARD_SECRET_KEY_PREVIOUS?: string;
  TRAINYARD_QUEUE_PREFIX: string;
  SSH_CONNECT_TIMEOUT_MS: number;
  SSH_KEEPALIVE_MS: number;
  SSH_COMMAND_TIMEOUT_MS: number;
  STOP_GRACE_MS: number;
  LOG_TAIL_BYTES: number;
}

/**
 * What a service that reaches nodes holds: repositories (secrets sealed with the installation key,
 * writes under per-document locks), one SSH pool, and the gateway over it. Close `ssh` on shutdown.
 */
export function openNodeAccess(
  config: NodeAccessConfig,
  mongo: Connection,
  redis: Redis,
  logger: Logger,
): { repos: Repos; ssh: SshPool; gateway: NodeGateway } {
  const repos = createRepos(mongo, secretBoxFromConfig(config), new RedisDocumentLocks(redis, config.TRAINYARD_QUEUE_PREFIX));
  const ssh = new SshPool({
    connectTimeoutMs: config.SSH_CONNECT_TIMEOUT_MS,
    keepaliveIntervalMs: config.SSH_KEEPALIVE_MS,
    commandTimeoutMs: config.SSH_COMMAND_TIMEOUT_MS,
    logger,
  });
  const gateway = new NodeGateway(ssh, repos.credentials, {
    stopGraceMs: config.STOP_GRACE_MS,
    logTailBytes: config.LOG_TAIL_BYTES,
    commandTimeoutMs: config.SSH_COMMAND_TIMEOUT_MS,
  });
  return { repos, ssh, gateway };
}
