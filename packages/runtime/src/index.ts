export * from "./bus";
export * from "./health";
export * from "./queue-metrics";
export * from "./reconcile";
export * from "./redis";
export * from "./service";
export * from "./workers";
