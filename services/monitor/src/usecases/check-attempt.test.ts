import type { AttemptNodeDoc } from "@trainyard/db";
import type { ProbeResult } from "@trainyard/frameworks";
import { describe, expect, it } from "vitest";
import { needsWrite, nextNodeState } from "./check-attempt";

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

describe("needsWrite", () => {
  const seen = (at: Date, more: Partial<AttemptNodeDoc> = {}): AttemptNodeDoc => ({
    ...node,
    lastSeenAt: at,
    logTail: "a",
    ...more,
  });
  const t0 = new Date("2026-12-01T00:00:00Z");
  const later = (ms: number) => new Date(t0.getTime() + ms);

  it("a check that saw only fresher output waits until the stored freshness is writeMs old", () => {
    const before = [seen(t0)];
    expect(needsWrite(before, [seen(later(5_000), { logTail: "ab" })], later(5_000), 12_500)).toBe(false);
    expect(needsWrite(before, [seen(later(10_000), { logTail: "abc" })], later(10_000), 12_500)).toBe(false);
    expect(needsWrite(before, [seen(later(15_000))], later(15_000), 12_500)).toBe(true);
  });

  it("what decides the attempt's fate is written by the check that saw it", () => {
    const before = [seen(t0)];
    const now = later(1_000);
    expect(needsWrite(before, [seen(now, { state: "exited", exitCode: 0 })], now, 12_500)).toBe(true);
    expect(needsWrite(before, [seen(now, { missedChecks: 1 })], now, 12_500)).toBe(true);
    expect(needsWrite(before, [seen(now, { pgid: 42 })], now, 12_500)).toBe(true);
    expect(needsWrite(before, [{ ...node, state: "unreachable", missedChecks: 1 }], now, 12_500)).toBe(true);
    expect(needsWrite(before, [seen(now), seen(now, { name: "n2" })], now, 12_500)).toBe(true);
  });

  it("a node never seen before is written at once", () => {
    expect(needsWrite([node], [seen(t0)], t0, 12_500)).toBe(true);
  });
});
