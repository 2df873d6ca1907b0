import type { Connection } from "mongoose";

/**
 * Run a data migration once per database: `done` is recorded in `migrations` under `id` after
 * `fn` finishes, and a later call returns 0 without running it. Migrations must be idempotent:
 * two processes starting at once may both run one.
 */
export async function oncePerDatabase(conn: Connection, id: string, fn: () => Promise<number>): Promise<number> {
  const migrations = conn.collection<{ _id: string; doneAt: Date }>("migrations");
  if (await migrations.findOne({ _id: id })) return 0;
  const n = await fn();
  await migrations.updateOne({ _id: id }, { $set: { doneAt: new Date() } }, { upsert: true });
  return n;
}
