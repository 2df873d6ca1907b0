export * from "./frameworks";
export * from "./http";
export * from "./infra";
export * from "./processes";
