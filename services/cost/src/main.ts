import { costConfigShape } from "@trainyard/common";
import { runMain } from "@trainyard/runtime";
import { startCost } from "./cost";

runMain("cost", costConfigShape, startCost);
