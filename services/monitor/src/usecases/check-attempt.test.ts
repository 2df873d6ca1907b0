import type { AttemptNodeDoc } from "@trainyard/db";
import type { ProbeResult } from "@trainyard/frameworks";
import { describe, expect, it } from "vitest";
import { nextNodeState } from "./check-attempt";

const node: AttemptNodeDoc = {
  name: "n1",
  host: "h",
  nodeRank: 0,
  gpuIndices: [0],
  ports: [],
  state: "running",
  missedChecks: 0,
};
const probe = (p: Partial<ProbeResult>): ProbeResult => ({
  started: true,
  alive: false,
  logSize: 0,
  logTail: "",
  metrics: [],
  ...p,
});
const now = new Date();

describe("nextNodeState", () => {
  it("a node whose processes are gone without an exit code is lost only when the next probe confirms it", () => {
    const first = nextNodeState({ node, probe: probe({ alive: false }) }, now, 3);
    expect(first.state).toBe("running");
    const second = nextNodeState({ node: first, probe: probe({ alive: false }) }, now, 3);
    expect(second.state).toBe("lost");
  });

  it("the exit code published meanwhile wins over a first probe that saw nothing", () => {
    const first = nextNodeState({ node, probe: probe({ alive: false }) }, now, 3);
    const second = nextNodeState({ node: first, probe: probe({ alive: false, exitCode: 0 }) }, now, 3);
    expect(second).toMatchObject({ state: "exited", exitCode: 0, missedChecks: 0 });
  });

  it("an exit code or live processes settle at once; an unreachable node is lost after the misses allowed", () => {
    expect(nextNodeState({ node, probe: probe({ alive: false, exitCode: 1 }) }, now, 3)).toMatchObject({
      state: "exited",
      exitCode: 1,
    });
    expect(nextNodeState({ node, probe: probe({ alive: true }) }, now, 3).state).toBe("running");
    let n = node;
    for (let i = 0; i < 3; i++) n = nextNodeState({ node: n, error: "timeout" }, now, 3);
    expect(n.state).toBe("lost");
  });
});
