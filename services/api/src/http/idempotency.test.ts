import { UserError } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { parseIdempotencyKey } from "./idempotency";

describe("parseIdempotencyKey", () => {
  it("accepts 1-128 characters of [A-Za-z0-9_.:-]", () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    for (const k of ["a", "req-2024-01-01:42", "A.b_c-d:e", "x".repeat(128), "0"]) expect(parseIdempotencyKey(k)).toBe(k);
  });

  it("refuses anything else with a 400", () => {
    for (const k of ["", "x".repeat(129), "a b", "a/b", "ключ", "a,b", "a\tb", "$(id)", ["a", "b"]]) {
      let err: unknown;
      try {
        parseIdempotencyKey(k);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(k)).toBeInstanceOf(UserError);
      expect((err as UserError).status).toBe(400);
      expect((err as UserError).message).toContain("Idempotency-Key");
    }
  });
});
