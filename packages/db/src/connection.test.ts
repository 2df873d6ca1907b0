import { describe, expect, it } from "vitest";
import { isDatabaseUnavailableError, isDuplicateKeyError, isWriteConflictError, retryWriteConflicts } from "./connection";

describe("database error classes", () => {
  it("recognises write conflicts of each backend", () => {
    expect(isWriteConflictError(new Error("database is locked (SQLITE_BUSY)"))).toBe(true);
    expect(isWriteConflictError(new Error("could not serialize access due to concurrent update (SQLSTATE 40001)"))).toBe(true);
    expect(isWriteConflictError(new Error("deadlock detected (SQLSTATE 40P01)"))).toBe(true);
    expect(isWriteConflictError(Object.assign(new Error("WriteConflict"), { code: 112 }))).toBe(true);
    expect(isWriteConflictError(Object.assign(new Error("x"), { errorLabels: ["TransientTransactionError"] }))).toBe(true);
    expect(isWriteConflictError(new Error("E11000 duplicate key"))).toBe(false);
    expect(isWriteConflictError(null)).toBe(false);
  });

  it("treats unreachable servers as unavailable, not duplicate keys or bugs", () => {
    expect(isDatabaseUnavailableError(Object.assign(new Error("timeout"), { name: "MongoServerSelectionError" }))).toBe(true);
    expect(isDatabaseUnavailableError(Object.assign(new Error("stepped down"), { code: 189 }))).toBe(true);
    expect(isDatabaseUnavailableError(new Error("Operation `jobs.findOne()` buffering timed out after 10000ms"))).toBe(true);
    const dup = Object.assign(new Error("E11000"), { code: 11000 });
    expect(isDuplicateKeyError(dup)).toBe(true);
    expect(
      isDuplicateKeyError(new Error('ERROR: duplicate key value violates unique constraint "budgets_x_idx" (SQLSTATE 23505)')),
    ).toBe(true);
    expect(isDatabaseUnavailableError(dup)).toBe(false);
    expect(isDatabaseUnavailableError(new TypeError("x is undefined"))).toBe(false);
  });
});

describe("retryWriteConflicts", () => {
  it("retries a conflicted write until it goes through", async () => {
    let calls = 0;
    const out = await retryWriteConflicts(async () => {
      calls++;
      if (calls < 3) throw new Error("database is locked (SQLITE_BUSY)");
      return "ok";
    });
    expect(out).toBe("ok");
    expect(calls).toBe(3);
  });

  it("gives up after the attempts, and never retries other errors", async () => {
    let calls = 0;
    await expect(
      retryWriteConflicts(async () => {
        calls++;
        throw new Error("deadlock detected (SQLSTATE 40P01)");
      }, 3),
    ).rejects.toThrow(/deadlock/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      retryWriteConflicts(async () => {
        calls++;
        throw Object.assign(new Error("E11000"), { code: 11000 });
      }),
    ).rejects.toThrow("E11000");
    expect(calls).toBe(1);
  });
});
