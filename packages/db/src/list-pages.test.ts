import { describe, expect, it } from "vitest";
import {
  LIST_PAGE_LEVELS,
  LIST_PAGE_OPEN_MS,
  LIST_PAGE_SIZE,
  type Listed,
  listPageKey,
  listPagesOf,
  newestFirst,
  walkNewestFirst,
} from "./list-pages";

interface Doc extends Listed {
  _id: string;
  createdAt: Date;
  listPage: number;
  groups: string[];
  status: "QUEUED" | "SUCCEEDED";
}

/** A seeded PRNG (mulberry32): every run walks the same data. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Jobs as API replicas file them (ListPageCounter): each replica fills its own open page until it
 * holds LIST_PAGE_SIZE jobs or has been open LIST_PAGE_OPEN_MS, then takes the team's next number.
 */
function submitted(times: number[], replicas: number, r: () => number, queuedShare = 1): Doc[] {
  let next = 0;
  const open = Array.from({ length: replicas }, () => ({ page: -1, used: LIST_PAGE_SIZE, openedAt: 0 }));
  return [...times]
    .sort((a, b) => a - b)
    .map((t, i) => {
      const rep = open[Math.floor(r() * replicas)]!;
      if (rep.used >= LIST_PAGE_SIZE || t - rep.openedAt >= LIST_PAGE_OPEN_MS)
        Object.assign(rep, { page: next++, used: 0, openedAt: t });
      rep.used++;
      return {
        _id: i.toString(16).padStart(24, "0"),
        createdAt: new Date(Math.floor(t)),
        listPage: rep.page,
        groups: listPagesOf(rep.page),
        status: r() < queuedShare ? "QUEUED" : "SUCCEEDED",
      } satisfies Doc;
    });
}

/** An in-memory backend that counts the documents each query had to read (every match of its group). */
function backend(docs: Doc[], match: (d: Doc) => boolean = () => true) {
  const stats = { queries: 0, read: 0 };
  // Stored in a shuffled order: the walk may not rely on the order a group comes back in.
  const stored = [...docs].sort((a, b) => ((a._id.charCodeAt(23) * 7919) % 13) - ((b._id.charCodeAt(23) * 7919) % 13));
  const fetch = async (group: string, cap: number | undefined) => {
    stats.queries++;
    const hits = stored.filter((d) => d.groups.includes(group) && match(d));
    stats.read += hits.length;
    return cap ? hits.slice(0, cap) : hits;
  };
  return { fetch, stats, end: Math.max(0, ...docs.map((d) => d.listPage + 1)) };
}

async function allPages(docs: Doc[], limit: number, match?: (d: Doc) => boolean) {
  const b = backend(docs, match);
  const seen: string[] = [];
  let after: Doc | undefined;
  let startLevel: number | undefined;
  let pages = 0;
  for (; pages < 10_000; pages++) {
    const r = await walkNewestFirst({
      fetch: b.fetch,
      want: limit + 1,
      oldest: 0,
      end: b.end,
      ...(after ? { after: { page: after.listPage, createdAt: after.createdAt, id: after._id } } : {}),
      ...(startLevel !== undefined ? { startLevel } : {}),
    });
    startLevel = r.level;
    const page = r.items.slice(0, limit);
    seen.push(...page.map((d) => d._id));
    if (r.items.length <= limit) break;
    after = page[page.length - 1];
  }
  return { seen, stats: b.stats, pages: pages + 1 };
}

const inOrder = (docs: Doc[]) => [...docs].sort(newestFirst).map((d) => d._id);
const NOW = Date.UTC(2026, 11, 3, 18, 0, 0);

describe("list pages", () => {
  it("file a job under its page's group at every level", () => {
    expect(listPagesOf(77)).toHaveLength(LIST_PAGE_LEVELS.length);
    expect(listPagesOf(77).slice(0, 4)).toEqual(["0:77", "2:19", "4:4", "6:1"]);
    // Pages below zero (older jobs filed by the migration) group the same way.
    expect(listPageKey(2, -1)).toBe("2:-1");
    expect(listPageKey(2, -4)).toBe("2:-1");
    expect(listPageKey(2, -5)).toBe("2:-2");
  });

  const shapes: Record<string, (r: () => number) => number[]> = {
    "a burst of 3,000 in two seconds": (r) => Array.from({ length: 3000 }, () => NOW - 3_000 + r() * 2_000),
    "sparse history over two years": (r) => Array.from({ length: 400 }, () => NOW - r() * 2 * 365 * 86_400_000),
    "a burst three hours ago after a quiet month": (r) => [
      ...Array.from({ length: 1500 }, () => NOW - 3 * 3_600_000 - r() * 20_000),
      ...Array.from({ length: 100 }, () => NOW - r() * 30 * 86_400_000),
    ],
  };
  for (const [name, make] of Object.entries(shapes)) {
    it(`pages every job exactly once in the list's order, 1 and 3 replicas: ${name}`, async () => {
      for (const replicas of [1, 3]) {
        const r = prng(name.length + replicas);
        const docs = submitted(make(r), replicas, r, 0.1);
        for (const limit of [1, 20, 200]) {
          const { seen, stats, pages } = await allPages(docs, limit);
          expect(seen).toEqual(inOrder(docs));
          // A page of the list reads a few list pages' worth, never the whole history.
          expect(stats.read / pages, `read per page at limit ${limit}`).toBeLessThan(3 * limit + 3 * LIST_PAGE_SIZE);
          // A filter matching a tenth of the jobs.
          const queued = await allPages(docs, limit, (d) => d.status === "QUEUED");
          expect(queued.seen).toEqual(inOrder(docs.filter((d) => d.status === "QUEUED")));
          expect(queued.stats.queries / queued.pages, `queries per page at limit ${limit}`).toBeLessThan(12);
        }
      }
    });
  }

  it("with one replica, the list's order is creation order", () => {
    const r = prng(3);
    const docs = submitted(
      Array.from({ length: 500 }, () => NOW - r() * 86_400_000),
      1,
      r,
    );
    const byTime = [...docs].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a._id < b._id ? 1 : -1));
    expect(inOrder(docs)).toEqual(byTime.map((d) => d._id));
  });

  it("reads the first page of a 10,000-job team from its newest list pages", async () => {
    const r = prng(7);
    const docs = submitted(
      Array.from({ length: 10_000 }, () => NOW - r() * 30 * 86_400_000),
      2,
      r,
    );
    const b = backend(docs);
    const first = await walkNewestFirst({ fetch: b.fetch, want: 21, oldest: 0, end: b.end });
    expect(first.items.map((d) => d._id)).toEqual(inOrder(docs).slice(0, 21));
    expect(b.stats.read).toBeLessThanOrEqual(3 * LIST_PAGE_SIZE);
    // A job every ~4 minutes: each in a page of its own, so the walk widens 1, 4, 16, … pages.
    expect(first.queries).toBeLessThanOrEqual(6);
  });

  it("finds the few matches of a rare filter in a handful of wide groups", async () => {
    const r = prng(11);
    const docs = submitted(
      Array.from({ length: 10_000 }, () => NOW - r() * 30 * 86_400_000),
      1,
      r,
    );
    const rare = new Set([docs[17]!._id, docs[5_000]!._id, docs[9_990]!._id]);
    const b = backend(docs, (d) => rare.has(d._id));
    const res = await walkNewestFirst({ fetch: b.fetch, want: 21, oldest: 0, end: b.end });
    expect(res.items.map((d) => d._id)).toEqual(inOrder(docs.filter((d) => rare.has(d._id))));
    expect(res.queries).toBeLessThan(LIST_PAGE_LEVELS.length + 2);
  });

  it("walks pages below zero down to the oldest, and stops for a cursor past either end", async () => {
    const docs = [-3, -2, -1, 0, 1].map((page, i) => ({
      _id: i.toString(16).padStart(24, "0"),
      createdAt: new Date(NOW - 1000 + i),
      listPage: page,
      groups: listPagesOf(page),
      status: "QUEUED" as const,
    }));
    const b = backend(docs);
    const all = await walkNewestFirst({ fetch: b.fetch, want: 10, oldest: -3, end: 2 });
    expect(all.items.map((d) => d.listPage)).toEqual([1, 0, -1, -2, -3]);
    const below = await walkNewestFirst({
      fetch: b.fetch,
      want: 10,
      oldest: -3,
      end: 2,
      after: { page: -9, createdAt: new Date(0), id: "0" },
    });
    expect(below.items).toEqual([]);
    const above = await walkNewestFirst({
      fetch: b.fetch,
      want: 10,
      oldest: -3,
      end: 2,
      after: { page: 1e12, createdAt: new Date(0), id: "0" },
    });
    expect(above.items.map((d) => d.listPage)).toEqual([1, 0, -1, -2, -3]);
  });
});
