export * from "./client";
export * from "./config";
export * from "./exit";
export * from "./format";
export * from "./specs";
export * from "./sse";
