export * from "./bus";
export * from "./health";
export * from "./redis";
export * from "./service";
export * from "./workers";
