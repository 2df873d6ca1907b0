export * from "./node-gateway";
export * from "./scheduling";
