import mongoose, { type Connection } from "mongoose";

/**
 * One mongoose connection per process (never the global default), so tests can open several
 * databases side by side.
 */
export async function connectMongo(
  url: string,
  dbName: string,
  opts: { serverSelectionTimeoutMS?: number } = {},
): Promise<Connection> {
  const conn = mongoose.createConnection(url, {
    dbName,
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000,
    // FerretDB v1 has no transactions or retryable writes; every state change is one conditional update.
    retryWrites: false,
    autoIndex: true,
  });
  await conn.asPromise();
  return conn;
}

export async function pingMongo(conn: Connection): Promise<void> {
  const db = conn.db;
  if (!db) throw new Error("MongoDB connection is not open");
  await db.command({ ping: 1 });
}

/**
 * A write refused by a unique index. MongoDB says so with code 11000; FerretDB (SQLite) does for
 * inserts, but an update (findAndModify) that collides surfaces as SQLite's "UNIQUE constraint
 * failed" without the code.
 */
export function isDuplicateKeyError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (e.code === 11000) return true;
  return typeof e.message === "string" && (e.message.includes("E11000") || e.message.includes("UNIQUE constraint failed"));
}
