import { apiConfigShape } from "@trainyard/common";
import { runMain } from "@trainyard/runtime";
import { startApi } from "./app";

runMain("api", apiConfigShape, startApi);
