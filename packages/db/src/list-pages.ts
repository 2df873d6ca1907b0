/**
 * Newest-first pages of a team's jobs on a backend that cannot sort in its index. FerretDB v1
 * pushes scalar equality down to PostgreSQL, then decodes, sorts and limits every match itself
 * (the first page of a team with 10,000 jobs: 3.2 s), and even a query with a limit and no sort
 * streams every match out of PostgreSQL (~0.04 ms a row). So no query may match much.
 *
 * Each job is filed in a list page when it is created: pages are numbered per team in the order
 * an API process opened them (a counter in `counters`), and a page holds at most LIST_PAGE_SIZE
 * jobs of one process, opened for at most LIST_PAGE_OPEN_MS. A job also carries its page's group
 * at every level (`<level>:<page / 4^level>`). A list walks groups from the newest page down, each
 * one an equality on `listPages` (pushed down, indexed), and sorts only that group in memory.
 * Groups are disjoint and walked in page order, so their concatenation is in the list's order:
 * page, then createdAt, then _id, all descending. Where the filter matches little the walk takes
 * wider groups (×4 a step); a group asked with a cap that comes back full is read again finer.
 * A single page is always read whole: it holds at most LIST_PAGE_SIZE jobs.
 *
 * The order is "newest first" by the page: with several API replicas, jobs accepted within the
 * same LIST_PAGE_OPEN_MS by different replicas may interleave out of createdAt order. Every job
 * is in exactly one place of that order, so keyset pages never skip or repeat one.
 */

export const LIST_PAGE_SIZE = 32;
export const LIST_PAGE_OPEN_MS = 2_000;

/**
 * Group widths in pages, as powers of two: 1, 4, 16, … 4^9 pages (8 million jobs at 32 a page;
 * past that the walk goes on in groups of the widest level). Each level is a string in every job,
 * and every string is decoded with the job, so no more of them than a walk needs.
 */
export const LIST_PAGE_LEVELS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18] as const;

export function listPageKey(level: number, page: number): string {
  return `${level}:${Math.floor(page / 2 ** level)}`;
}

/** The groups a job in `page` is filed under, one per level. */
export function listPagesOf(page: number): string[] {
  return LIST_PAGE_LEVELS.map((level) => listPageKey(level, page));
}

export interface Listed {
  _id: { toString(): string };
  createdAt: Date;
  listPage?: number;
}

/** Where a list page starts: just after this job (the last one of the previous page). */
export interface ListPosition {
  page: number;
  createdAt: Date;
  id: { toString(): string };
}

/** The list's order: page, then createdAt, then _id (ObjectId hex strings order like the ids), newest first. */
export function newestFirst(a: Listed, b: Listed): number {
  const p = (b.listPage ?? 0) - (a.listPage ?? 0);
  if (p !== 0) return p;
  const d = b.createdAt.getTime() - a.createdAt.getTime();
  if (d !== 0) return d;
  const [x, y] = [a._id.toString(), b._id.toString()];
  return x < y ? 1 : x > y ? -1 : 0;
}

export interface WalkOptions<T extends Listed> {
  /** The documents filed under one group key matching the caller's filter, in any order; at most `cap` when given. */
  fetch(group: string, cap: number | undefined): Promise<T[]>;
  /** How many to return (a page and one more, to know whether another page follows). */
  want: number;
  /** Only documents after this one in the order (the last of the previous page). */
  after?: ListPosition;
  /** Pages in use: from `oldest` up to, not including, `end`. */
  oldest: number;
  end: number;
  /** Hint: the level index the last walk of the same filter ended at. */
  startLevel?: number;
}

export interface WalkResult<T> {
  items: T[];
  /** Where the next walk of this filter should start (the level index this one ended at). */
  level: number;
  /** Queries made. */
  queries: number;
}

/** The first `want` documents in the list's order after `after`: see the module comment. */
export async function walkNewestFirst<T extends Listed>(o: WalkOptions<T>): Promise<WalkResult<T>> {
  const cap = Math.max(2 * o.want, 32);
  const after = o.after;
  const isAfter = (d: T) => !after || newestFirst({ _id: after.id, createdAt: after.createdAt, listPage: after.page }, d) < 0;
  const top = LIST_PAGE_LEVELS.length - 1;
  let i = Math.min(Math.max(o.startLevel ?? 0, 0), top);
  // Every page at or above `hi` is covered.
  let hi = Math.min(after ? after.page + 1 : o.end, o.end);
  const out: T[] = [];
  let queries = 0;
  // Groups found too dense, innermost last: until the walk is below one, it stays finer than it.
  const dense: Array<{ below: number; maxLevel: number }> = [];
  while (out.length < o.want && hi > o.oldest) {
    while (dense.length && hi <= dense[dense.length - 1]!.below) dense.pop();
    const width = 2 ** LIST_PAGE_LEVELS[i]!;
    const lo = Math.floor((hi - 1) / width) * width;
    const docs = await o.fetch(listPageKey(LIST_PAGE_LEVELS[i]!, lo), i > 0 ? cap : undefined);
    queries++;
    if (i > 0 && docs.length >= cap) {
      // Inside it, at most one level wider than its density suggests: wider groups of it would be
      // found full again, each such probe reading a cap of documents for nothing.
      const finer = finerLevel(i, docs, cap);
      dense.push({ below: lo, maxLevel: Math.min(i - 1, finer + 1) });
      i = finer;
      continue;
    }
    out.push(...docs.filter((d) => (d.listPage ?? 0) < hi && isAfter(d)).sort(newestFirst));
    hi = lo;
    // A sparse group: the next one may be 4 times wider (not as wide as a group found too dense).
    const ceiling = dense.length ? dense[dense.length - 1]!.maxLevel : top;
    if (docs.length * 4 < cap && i < ceiling) i++;
  }
  return { items: out.slice(0, o.want), level: i, queries };
}

/**
 * A group came back full (`cap` documents, in no particular order): the level whose groups
 * should hold about half a cap at the density the sample shows, at least one level finer.
 */
function finerLevel<T extends Listed>(i: number, sample: T[], cap: number): number {
  const pages = sample.map((d) => d.listPage ?? 0);
  const span = Math.max(...pages) - Math.min(...pages) + 1;
  const fits = (span * cap) / 2 / sample.length; // pages that hold cap/2 at this density
  let j = i - 1;
  while (j > 0 && 2 ** LIST_PAGE_LEVELS[j]! > fits) j--;
  return j;
}
