import { monitorConfigShape } from "@trainyard/common";
import { runMain } from "@trainyard/runtime";
import { startMonitor } from "./monitor";

runMain("monitor", monitorConfigShape, startMonitor);
