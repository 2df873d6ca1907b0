import { describe, expect, it } from "vitest";
import { classifyHttp, nextDelayMs, parseRetryAfter } from "./retry";

describe("delivery outcomes", () => {
  it("2xx delivered; 5xx, 408 retry; 429 retries after Retry-After; other 4xx and 3xx are permanent", () => {
    expect(classifyHttp(204, undefined, "")).toEqual({ ok: true, status: 204 });
    expect(classifyHttp(503, undefined, "down")).toMatchObject({ ok: false, retry: true, status: 503, error: "HTTP 503: down" });
    expect(classifyHttp(408, undefined, "")).toMatchObject({ ok: false, retry: true });
    expect(classifyHttp(429, "2", "")).toMatchObject({ ok: false, retry: true, retryAfterMs: 2000 });
    expect(classifyHttp(403, undefined, "no")).toMatchObject({ ok: false, retry: false, status: 403 });
    expect(classifyHttp(404, undefined, "")).toMatchObject({ ok: false, retry: false });
    expect(classifyHttp(301, undefined, "")).toMatchObject({
      ok: false,
      retry: false,
      error: expect.stringContaining("redirects"),
    });
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("7", now)).toBe(7000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("backs off exponentially with jitter, capped, unless the receiver says how long to wait", () => {
    const opts = { baseMs: 1000, maxMs: 10_000 };
    expect(nextDelayMs(1, opts, () => 0.5)).toBe(1000);
    expect(nextDelayMs(2, opts, () => 0.5)).toBe(2000);
    expect(nextDelayMs(3, opts, () => 0.5)).toBe(4000);
    expect(nextDelayMs(10, opts, () => 0.5)).toBe(10_000);
    expect(nextDelayMs(1, opts, () => 0)).toBe(800);
    expect(nextDelayMs(1, opts, () => 1)).toBe(1200);
    expect(nextDelayMs(5, { ...opts, retryAfterMs: 2000 })).toBe(2000);
  });
});
