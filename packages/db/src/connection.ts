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
