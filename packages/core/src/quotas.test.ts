import { describe, expect, it } from "vitest";
import { gpusOf, quotaBlock } from "./quotas";

describe("quotaBlock", () => {
  it("lets everything through without a quota", () => {
    expect(quotaBlock({}, { jobs: 100, gpus: 1000 }, 64)).toBeUndefined();
  });
  it("counts concurrent jobs", () => {
    expect(quotaBlock({ maxJobs: 2 }, { jobs: 1, gpus: 4 }, 4)).toBeUndefined();
    expect(quotaBlock({ maxJobs: 2 }, { jobs: 2, gpus: 4 }, 1)).toBe("waiting for team quota: 2 of 2 concurrent jobs running");
    expect(quotaBlock({ maxJobs: 0 }, { jobs: 0, gpus: 0 }, 1)).toMatch(/0 of 0 concurrent jobs/);
  });
  it("counts GPUs, the new job's included", () => {
    expect(quotaBlock({ maxGpus: 8 }, { jobs: 1, gpus: 4 }, 4)).toBeUndefined();
    expect(quotaBlock({ maxGpus: 8 }, { jobs: 1, gpus: 6 }, 4)).toBe(
      "waiting for team quota: 6 of 8 GPUs in use, the job needs 4",
    );
  });
  it("says when a job can never fit the quota as it stands", () => {
    expect(quotaBlock({ maxGpus: 4 }, { jobs: 0, gpus: 0 }, 8)).toMatch(
      /needs 8 GPUs but the team may hold at most 4; it starts only if the quota is raised/,
    );
  });
});

describe("gpusOf", () => {
  const spec = { resources: { nodes: 2, gpusPerNode: 2 } };
  it("uses the current attempt's reservation, else the spec", () => {
    expect(gpusOf({ spec, attempts: [], currentAttemptId: undefined } as never)).toBe(4);
    const attempts = [{ id: "a1", nodes: [{ gpuIndices: [0, 1] }, { gpuIndices: [0] }] }];
    expect(gpusOf({ spec, attempts, currentAttemptId: "a1" } as never)).toBe(3);
  });
});
