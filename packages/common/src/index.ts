export * from "./cluster";
export * from "./config";
export * from "./errors";
export * from "./job";
export * from "./logger";
export * from "./names";
export * from "./queues";
export * from "./secrets";
