import type { Connection } from "mongoose";
import { isDuplicateKeyError, retryWriteConflicts } from "./connection";
import { LIST_PAGE_OPEN_MS, LIST_PAGE_SIZE } from "./list-pages";

/** A team's list pages: `next` is the number the next page opened gets; `low` the lowest in use (older jobs filed by the migration). */
export interface ListPageCounterDoc {
  _id: string;
  next?: number;
  low?: number;
}

export const listPageCounterId = (team: string) => `job-list-pages:${team}`;

export function listPageCounters(conn: Connection) {
  return conn.collection<ListPageCounterDoc>("counters");
}

/**
 * Hands out list pages (list-pages.ts) to the jobs this process creates: one open page per team,
 * until it holds LIST_PAGE_SIZE jobs or has been open LIST_PAGE_OPEN_MS; the next is numbered by
 * the team's counter (one `$inc` per page, not per job). No lock: where FerretDB v1 lets two
 * processes read the same number, they share a page, which keeps the order total (page, then
 * time, then id) and only lets that page hold more jobs.
 */
export class ListPageCounter {
  private readonly open = new Map<string, { page: number; used: number; openedAt: number }>();
  private readonly opening = new Map<string, Promise<void>>();

  constructor(
    private readonly conn: Connection,
    private readonly now: () => number = Date.now,
  ) {}

  async pageFor(team: string): Promise<number> {
    for (;;) {
      const cur = this.open.get(team);
      if (cur && cur.used < LIST_PAGE_SIZE && this.now() - cur.openedAt < LIST_PAGE_OPEN_MS) {
        cur.used++;
        return cur.page;
      }
      let opening = this.opening.get(team);
      if (!opening) {
        opening = this.openPage(team).finally(() => this.opening.delete(team));
        this.opening.set(team, opening);
      }
      await opening;
    }
  }

  private async openPage(team: string): Promise<void> {
    const doc = await retryWriteConflicts(() =>
      listPageCounters(this.conn)
        .findOneAndUpdate({ _id: listPageCounterId(team) }, { $inc: { next: 1 } }, { upsert: true, returnDocument: "after" })
        // Two first pages of a team at once: one upsert loses on the unique _id; the retry increments.
        .catch((err: unknown) => {
          if (isDuplicateKeyError(err))
            return listPageCounters(this.conn).findOneAndUpdate(
              { _id: listPageCounterId(team) },
              { $inc: { next: 1 } },
              { returnDocument: "after" },
            );
          throw err;
        }),
    );
    if (!doc?.next) throw new Error(`list page counter of team '${team}' did not increment`);
    this.open.set(team, { page: doc.next - 1, used: 0, openedAt: this.now() });
  }
}
