import { describe, expect, it } from "vitest";
import { LatestSnapshot } from "./latest-snapshot";

/** A read whose every call the test resolves by hand. */
function manualReads() {
  const pending: Array<(v: number) => void> = [];
  let calls = 0;
  const read = () =>
    new Promise<number>((resolve) => {
      calls++;
      pending.push(resolve);
    });
  return { read, pending, calls: () => calls };
}

describe("LatestSnapshot", () => {
  it("waits for the first read, then serves it without reading again while it is fresh", async () => {
    let t = 0;
    const r = manualReads();
    const s = new LatestSnapshot(r.read, 1000, 50, () => t);
    const first = s.get();
    const second = s.get();
    expect(r.calls()).toBe(1);
    r.pending[0]!(7);
    expect(await first).toBe(7);
    expect(await second).toBe(7);
    t = 1000;
    expect(await s.get()).toBe(7);
    expect(r.calls()).toBe(1);
    expect(s.ageSeconds()).toBe(1);
  });

  it("once stale, starts one read for all callers and serves the previous value when the read is slow", async () => {
    let t = 0;
    const r = manualReads();
    const s = new LatestSnapshot(r.read, 1000, 30, () => t);
    const first = s.get();
    r.pending[0]!(1);
    await first;
    t = 5000;
    // Real timers: the wait is 30 ms from the refresh's start (t=5000 on the fake clock).
    const before = Date.now();
    const [a, b] = await Promise.all([s.get(), s.get()]);
    expect([a, b]).toEqual([1, 1]);
    expect(Date.now() - before).toBeLessThan(1000);
    expect(r.calls()).toBe(2);
    // The refresh lands: the next caller gets it, stamped with the moment the read began.
    r.pending[1]!(2);
    await new Promise((res) => setTimeout(res, 0));
    expect(await s.get()).toBe(2);
    expect(s.ageSeconds()).toBe(0);
    expect(r.calls()).toBe(2);
  });

  it("serves the new value at once when the refresh is quicker than the wait", async () => {
    let t = 0;
    let n = 0;
    const s = new LatestSnapshot(
      async () => ++n,
      1000,
      5_000,
      () => t,
    );
    expect(await s.get()).toBe(1);
    t = 2000;
    const before = Date.now();
    expect(await s.get()).toBe(2);
    expect(Date.now() - before).toBeLessThan(1000);
  });

  it("keeps serving the previous value when a refresh fails, and tries again on the next call", async () => {
    let t = 0;
    let fail = false;
    let n = 0;
    const s = new LatestSnapshot(
      async () => {
        if (fail) throw new Error("database down");
        return ++n;
      },
      1000,
      5_000,
      () => t,
    );
    expect(await s.get()).toBe(1);
    t = 2000;
    fail = true;
    expect(await s.get()).toBe(1);
    fail = false;
    expect(await s.get()).toBe(2);
  });

  it("fails the first call when the first read fails", async () => {
    const s = new LatestSnapshot(async () => Promise.reject(new Error("database down")), 1000);
    await expect(s.get()).rejects.toThrow("database down");
  });
});
