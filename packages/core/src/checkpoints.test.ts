import type { CheckpointDoc } from "@trainyard/db";
import { Types } from "mongoose";
import { describe, expect, it } from "vitest";
import { checkpointsToDelete } from "./checkpoints";

const ck = (step: number, loss?: number): CheckpointDoc => ({
  _id: new Types.ObjectId(),
  jobId: new Types.ObjectId(),
  team: "t",
  attemptId: "a1",
  attemptNumber: 1,
  step,
  node: "n1",
  path: `/ck/step-${step}`,
  uri: `node://n1/ck/step-${step}`,
  size: 1,
  metrics: loss === undefined ? [] : [{ name: "loss", value: loss }],
  state: "complete",
  createdAt: new Date(step * 1000),
  updatedAt: new Date(step * 1000),
});
const steps = (list: CheckpointDoc[]) => list.map((c) => c.step).sort((a, b) => a - b);

describe("checkpointsToDelete", () => {
  const all = [ck(5, 0.9), ck(10, 0.2), ck(15, 0.5), ck(20, 0.7), ck(25, 0.8)];

  it("keeps everything without a retention policy", () => {
    expect(checkpointsToDelete(all, {})).toEqual([]);
  });

  it("keepLast keeps the N newest", () => {
    expect(steps(checkpointsToDelete(all, { keepLast: 2 }))).toEqual([5, 10, 15]);
  });

  it("keepBest keeps the K best by a metric, and always the newest", () => {
    expect(steps(checkpointsToDelete(all, { keepBest: { count: 1, metric: "loss", mode: "min" } }))).toEqual([5, 15, 20]);
    expect(steps(checkpointsToDelete(all, { keepBest: { count: 2, metric: "loss", mode: "max" } }))).toEqual([10, 15, 20]);
  });

  it("keepLast and keepBest together keep the union", () => {
    expect(steps(checkpointsToDelete(all, { keepLast: 1, keepBest: { count: 1, metric: "loss", mode: "min" } }))).toEqual([
      5, 15, 20,
    ]);
  });
});
