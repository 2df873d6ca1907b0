import { launcherConfigShape } from "@trainyard/common";
import { runMain } from "@trainyard/runtime";
import { startLauncher } from "./launcher";

runMain("launcher", launcherConfigShape, startLauncher);
