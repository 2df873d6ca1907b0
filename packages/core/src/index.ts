export * from "./checkpoint-store";
export * from "./checkpoints";
export * from "./inter-node-ssh";
export * from "./node-access";
export * from "./node-gateway";
export * from "./quotas";
export * from "./scheduling";
export * from "./spend";
