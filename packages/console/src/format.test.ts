import { describe, expect, it } from "vitest";
import { age, allows, duration, ranksOf, searchLines, usd } from "./format";

describe("console formatting", () => {
  it("formats money and durations", () => {
    expect(usd(undefined)).toBe("–");
    expect(usd(0.01234)).toBe("$0.0123");
    expect(usd(12.345)).toBe("$12.35");
    expect(usd(1234.5)).toBe("$1235");
    expect(duration(42)).toBe("42 s");
    expect(duration(7500)).toBe("2 h 5 min");
    expect(duration(90000)).toBe("1 d 1 h");
    expect(age("2026-01-01T00:00:00Z", Date.parse("2026-01-01T00:03:10Z"))).toBe("3 min");
  });

  it("names a node's global ranks", () => {
    expect(ranksOf(0, 2)).toBe("0–1");
    expect(ranksOf(1, 2)).toBe("2–3");
    expect(ranksOf(3, 1)).toBe("3");
  });

  it("orders roles", () => {
    expect(allows("viewer", "member")).toBe(false);
    expect(allows("member", "member")).toBe(true);
    expect(allows("operator", "admin")).toBe(true);
    expect(allows(undefined, "viewer")).toBe(false);
  });

  it("searches log lines without case, keeping line numbers", () => {
    expect(searchLines(["a Loss 1", "b", "loss 2"], "LOSS")).toEqual([
      { n: 1, text: "a Loss 1" },
      { n: 3, text: "loss 2" },
    ]);
    expect(searchLines(["x", "y"], " ")).toHaveLength(2);
  });
});
