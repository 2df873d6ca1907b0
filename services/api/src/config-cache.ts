import { LRUCache } from "lru-cache";

/**
 * A short-lived, per-process cache of the configuration a submit reads on every request (a team's
 * default priority, a cluster's shape, which budgets cover a scope): these change rarely, while a
 * busy team submits hundreds of jobs a second. Entries live `ttlMs` (API_CONFIG_CACHE_MS; 0 turns
 * the cache off). Every write through this API replica forgets everything at once; a write through
 * another replica is seen here at most `ttlMs` later. Never holds spend, quotas in use or job state:
 * those are read fresh where they are decided (the budget's spend, the scheduler's admission).
 */
export class ConfigCache {
  private readonly entries?: LRUCache<string, { value: Promise<unknown> }>;

  constructor(ttlMs: number, maxEntries = 10_000) {
    if (ttlMs > 0) this.entries = new LRUCache({ max: maxEntries, ttl: ttlMs });
  }

  /**
   * `load()`'s value for `key`, loaded at most once per `ttlMs`. Concurrent callers share one
   * load; a failed load is not kept, so the next caller tries again.
   */
  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.entries) return load();
    const hit = this.entries.get(key);
    if (hit) return hit.value as Promise<T>;
    const value = load();
    const entry = { value };
    this.entries.set(key, entry);
    value.catch(() => {
      if (this.entries?.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }

  /** Drop every entry: called after any write to teams, clusters or budgets through this replica. */
  forgetAll(): void {
    this.entries?.clear();
  }
}
