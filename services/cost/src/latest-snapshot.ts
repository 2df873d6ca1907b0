/**
 * The last value of an expensive read, refreshed at most once per `maxAgeMs` however many callers
 * ask (one read in flight at a time). A caller that finds it older waits for the refresh at most
 * until `waitMs` after the refresh started, then takes the previous value: so a scrape of many
 * gauges costs at most one wait, not one per gauge, and never the read's full duration once a
 * first value exists. Only the very first call waits for the read itself.
 */
export class LatestSnapshot<T> {
  private last?: { at: number; value: T };
  private refreshing?: { done: Promise<void>; waitUntil: number };

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly waitMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<T> {
    const last = this.last;
    if (last && this.now() - last.at <= this.maxAgeMs) return last.value;
    const refresh = this.refresh();
    if (!this.last) {
      await refresh.done;
      return this.last!.value;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((r) => {
      timer = setTimeout(r, Math.max(0, refresh.waitUntil - this.now()));
    });
    await Promise.race([refresh.done.catch(() => undefined), waited]);
    clearTimeout(timer);
    return this.last.value;
  }

  /** Seconds since the value served now was read (undefined before the first read). */
  ageSeconds(): number | undefined {
    return this.last ? (this.now() - this.last.at) / 1000 : undefined;
  }

  /** Start a read unless one is in flight; the value is stamped with the moment the read began. */
  private refresh(): { done: Promise<void>; waitUntil: number } {
    if (this.refreshing) return this.refreshing;
    const startedAt = this.now();
    const done = this.read()
      .then((value) => {
        this.last = { at: startedAt, value };
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    this.refreshing = { done, waitUntil: startedAt + this.waitMs };
    return this.refreshing;
  }
}
