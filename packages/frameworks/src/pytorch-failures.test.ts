import { describe, expect, it } from "vitest";
import { torchrunFailedRanks, torchrunRootCause, torchrunWorkerFailure } from "./pytorch-failures";

describe("torchrunWorkerFailure", () => {
  it("reads the agent's failure line (the agent itself may still be alive in its exit barrier)", () => {
    const tail =
      "rank 3 failing\nWARNING:torch.distributed.elastic.multiprocessing.api:Sending process 24610 closing signal SIGTERM\n" +
      "ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: 7) local_rank: 1 (pid: 24612) of binary: python3\n";
    expect(torchrunWorkerFailure(tail)).toEqual({ localRank: 1, exitCode: 7 });
  });

  it("reads negative exit codes (signals) and ignores logs without a failure", () => {
    expect(torchrunWorkerFailure("failed (exitcode: -9) local_rank: 0 (pid: 1)")).toEqual({ localRank: 0, exitCode: -9 });
    expect(torchrunWorkerFailure("step 5/40 loss 0.1")).toBeUndefined();
  });
});

describe("torchrunRootCause", () => {
  it("reads rank and exit code from torchrun's failure summary", () => {
    const tail = [
      "train.py FAILED",
      "Root Cause (first observed failure):",
      "[0]:",
      "  time      : 2026-01-01_00:00:00",
      "  host      : n2",
      "  rank      : 3 (local_rank: 1)",
      "  exitcode  : 7 (pid: 4242)",
    ].join("\n");
    expect(torchrunRootCause(tail)).toEqual({ rank: 3, exitCode: 7 });
  });

  it("returns nothing when there is no summary", () => {
    expect(torchrunRootCause("Traceback ... boom")).toEqual({});
  });
});

describe("torchrunFailedRanks", () => {
  it("lists every failed rank of the summary, signal deaths included", () => {
    const tail = [
      "Failures:",
      "[1]:",
      "  time      : 2026-11-28_17:30:10",
      "  host      : localhost",
      "  rank      : 3 (local_rank: 1)",
      "  exitcode  : -9 (pid: 32008)",
      "Root Cause (first observed failure):",
      "[0]:",
      "  rank      : 2 (local_rank: 0)",
      "  exitcode  : 1 (pid: 32007)",
    ].join("\n");
    expect(torchrunFailedRanks(tail)).toEqual([
      { rank: 3, localRank: 1, exitCode: -9 },
      { rank: 2, localRank: 0, exitCode: 1 },
    ]);
    expect(torchrunFailedRanks("nothing here")).toEqual([]);
  });
});
