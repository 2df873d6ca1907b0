import { describe, expect, it, vi } from "vitest";
import { ConfigCache } from "./config-cache";

describe("ConfigCache", () => {
  it("loads a key once while it is fresh, and concurrent callers share the load", async () => {
    const cache = new ConfigCache(60_000);
    const load = vi.fn(async () => ({ priority: 3 }));
    const [a, b] = await Promise.all([cache.get("team:a", load), cache.get("team:a", load)]);
    expect(await cache.get("team:a", load)).toBe(a);
    expect(b).toBe(a);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("loads again after its time to live, or after forgetAll", async () => {
    const cache = new ConfigCache(30);
    let n = 0;
    const load = async () => ++n;
    expect(await cache.get("k", load)).toBe(1);
    expect(await cache.get("k", load)).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    expect(await cache.get("k", load)).toBe(2);
    cache.forgetAll();
    expect(await cache.get("k", load)).toBe(3);
  });

  it("does not keep a failed load: the next caller tries again", async () => {
    const cache = new ConfigCache(60_000);
    await expect(cache.get("k", async () => Promise.reject(new Error("db down")))).rejects.toThrow("db down");
    expect(await cache.get("k", async () => "ok")).toBe("ok");
  });

  it("with a time to live of 0 never caches", async () => {
    const cache = new ConfigCache(0);
    let n = 0;
    const load = async () => ++n;
    await cache.get("k", load);
    expect(await cache.get("k", load)).toBe(2);
  });
});
