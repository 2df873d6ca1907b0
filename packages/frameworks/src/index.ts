export * from "./allocation";
export * from "./node-protocol";
export * from "./plan-text";
export * from "./pytorch";
export * from "./pytorch-failures";
export * from "./requirements";
export * from "./shell";
export * from "./topology";
