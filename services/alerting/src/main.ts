import { alertingConfigShape } from "@trainyard/common";
import { runMain } from "@trainyard/runtime";
import { startAlerting } from "./alerting";

runMain("alerting", alertingConfigShape, startAlerting);
