import type { JobDoc } from "@trainyard/db";
import { Types } from "mongoose";
import { describe, expect, it } from "vitest";
import { launchAbandoned } from "./reconcile";

const job = (over: Partial<JobDoc>): JobDoc =>
  ({
    _id: new Types.ObjectId(),
    status: "LAUNCHING",
    currentAttemptId: "a1-x",
    attempts: [{ id: "a1-x", number: 1, masterAddr: "", createdAt: new Date(1_000), nodes: [] }],
    ...over,
  }) as unknown as JobDoc;

describe("launchAbandoned", () => {
  it("is true only for a LAUNCHING job whose launch lease has run out", () => {
    expect(launchAbandoned(job({ launchLeaseUntil: new Date(5_000) }), 30_000, 4_999)).toBe(false);
    expect(launchAbandoned(job({ launchLeaseUntil: new Date(5_000) }), 30_000, 5_001)).toBe(true);
    expect(launchAbandoned(job({ status: "RUNNING", launchLeaseUntil: new Date(0) }), 30_000, 5_001)).toBe(false);
  });

  it("counts a launch from before leases existed from its attempt's creation", () => {
    expect(launchAbandoned(job({}), 30_000, 30_000)).toBe(false);
    expect(launchAbandoned(job({}), 30_000, 31_001)).toBe(true);
  });
});
