import { type Connection, Schema } from "mongoose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { isDuplicateKeyError } from "./connection";
import { GroupInsert } from "./group-insert";
import { openTestStore, type TestStore } from "./testing";

interface Thing {
  key: string;
  n: number;
  tags: string[];
  createdAt: Date;
  updatedAt: Date;
}

let store: TestStore;
let conn: Connection;
beforeAll(async () => {
  store = await openTestStore("group-insert");
  conn = store.conn;
});
afterAll(() => store?.close());

describe("GroupInsert on the real backend", () => {
  it("writes concurrent inserts in groups; each caller gets its own outcome (a duplicate key fails only its insert)", async () => {
    const schema = new Schema<Thing>(
      { key: { type: String, required: true }, n: { type: Number, min: 0 }, tags: { type: [String], default: [] } },
      { timestamps: true },
    );
    schema.index({ key: 1 }, { unique: true });
    const Thing = conn.model<Thing>("GroupInsertThing", schema, "group_insert_things");
    await Thing.syncIndexes();
    const inserts = new GroupInsert(Thing);
    const insertMany = vi.spyOn(Thing.collection, "insertMany");

    // 40 at once; keys 5 and 17 are used twice.
    const keys = Array.from({ length: 40 }, (_, i) => `k${i === 20 ? 5 : i === 30 ? 17 : i}`);
    const outcomes = await Promise.allSettled(keys.map((key, n) => inserts.insert({ key, n })));

    const rejected = outcomes.flatMap((o, i) => (o.status === "rejected" ? [{ i, err: o.reason as unknown }] : []));
    expect(rejected.map((r) => keys[r.i]).sort()).toEqual(["k17", "k5"]);
    for (const r of rejected) expect(isDuplicateKeyError(r.err), String(r.err)).toBe(true);
    // Fewer round trips than documents: the first goes alone, the rest wait for it and go together.
    expect(insertMany.mock.calls.length).toBeLessThan(5);

    const stored = await Thing.find({}).lean();
    expect(stored).toHaveLength(38);
    for (const d of stored) {
      expect(d.createdAt).toBeInstanceOf(Date);
      expect(d.updatedAt).toBeInstanceOf(Date);
      expect(d.tags).toEqual([]);
      expect((d as unknown as { __v: number }).__v).toBe(0);
    }
    // What a caller gets back is the stored document.
    const first = outcomes[0];
    expect(first?.status).toBe("fulfilled");
    if (first?.status === "fulfilled") expect(first.value.toObject()).toMatchObject({ key: "k0", n: 0, tags: [] });
  });

  it("rejects an invalid document before it reaches a group, and the others still go", async () => {
    const Thing = conn.models.GroupInsertThing!;
    const inserts = new GroupInsert(Thing);
    const [bad, good] = await Promise.allSettled([inserts.insert({ key: "neg", n: -1 }), inserts.insert({ key: "ok", n: 1 })]);
    expect(bad.status).toBe("rejected");
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/n.*minimum/i);
    expect(good.status).toBe("fulfilled");
    expect(await Thing.countDocuments({ key: { $in: ["neg", "ok"] } })).toBe(1);
  });
});
