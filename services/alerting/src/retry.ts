/**
 * What a delivery attempt's outcome means for the next one (pure): 2xx delivered; 5xx, 408 and
 * network errors retry with exponential backoff; 429 waits for Retry-After; every other status
 * (3xx included: redirects are not followed) is permanent.
 */
export type SendResult =
  | { ok: true; status?: number }
  | { ok: false; retry: boolean; status?: number; error: string; retryAfterMs?: number };

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

export function classifyHttp(status: number, retryAfter: string | undefined, body: string, now = Date.now()): SendResult {
  if (status >= 200 && status < 300) return { ok: true, status };
  const snippet = body.replace(/\s+/g, " ").trim().slice(0, 200);
  const error = `HTTP ${status}${snippet ? `: ${snippet}` : ""}`;
  if (status === 429) {
    const wait = parseRetryAfter(retryAfter, now);
    return { ok: false, retry: true, status, error, ...(wait !== undefined ? { retryAfterMs: wait } : {}) };
  }
  if (status >= 500 || status === 408) {
    const wait = parseRetryAfter(retryAfter, now);
    return { ok: false, retry: true, status, error, ...(wait !== undefined ? { retryAfterMs: wait } : {}) };
  }
  if (status >= 300 && status < 400) return { ok: false, retry: false, status, error: `${error} (redirects are not followed)` };
  return { ok: false, retry: false, status, error };
}

/** Longest wait a receiver's Retry-After can impose (a day). */
export const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * Delay before attempt n+1 after attempt n failed: the receiver's Retry-After when it gave one
 * (capped at a day), else base × 2^(n-1) capped at max, with ±20 % jitter so retries spread.
 */
export function nextDelayMs(
  n: number,
  opts: { baseMs: number; maxMs: number; retryAfterMs?: number | undefined },
  random = Math.random,
): number {
  if (opts.retryAfterMs !== undefined) return Math.min(opts.retryAfterMs, MAX_RETRY_AFTER_MS);
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, n - 1));
  return Math.round(exp * (0.8 + 0.4 * random()));
}
