export * from "./bus";
export * from "./health";
export * from "./one-at-a-time";
export * from "./queue-metrics";
export * from "./reconcile";
export * from "./redis";
export * from "./service";
export * from "./workers";
