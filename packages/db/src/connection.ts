import mongoose, { type Connection } from "mongoose";

/**
 * One mongoose connection per process (never the global default), so tests can open several
 * databases side by side.
 */
/** Operations one process runs against the database at once (the driver queues the rest). */
export const DEFAULT_MAX_POOL_SIZE = 20;

export async function connectMongo(
  url: string,
  dbName: string,
  opts: { serverSelectionTimeoutMS?: number } = {},
): Promise<Connection> {
  const conn = mongoose.createConnection(url, {
    dbName,
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000,
    // At most DEFAULT_MAX_POOL_SIZE operations in flight per process (unless the URL's own
    // `maxPoolSize` says otherwise): FerretDB v1 needs two PostgreSQL connections for one
    // findAndModify (the read holds one while the update takes another), so 50 concurrent ones
    // took its whole pool (`pool_max_conns`, 50 by default) and it hung for good.
    ...(/[?&]maxPoolSize=/i.test(url) ? {} : { maxPoolSize: DEFAULT_MAX_POOL_SIZE }),
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
 * A write refused by a unique index. MongoDB says so with code 11000; FerretDB does for inserts,
 * but an update (findAndModify) that collides surfaces as the backend's own message without the
 * code: SQLite's "UNIQUE constraint failed", PostgreSQL's "duplicate key value violates unique
 * constraint" (SQLSTATE 23505).
 */
export function isDuplicateKeyError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (e.code === 11000) return true;
  // FerretDB on PostgreSQL: the update's error carries PostgreSQL's unique_violation (23505).
  return (
    typeof e.message === "string" &&
    (e.message.includes("E11000") ||
      e.message.includes("UNIQUE constraint failed") ||
      e.message.includes("duplicate key value violates unique constraint") ||
      e.message.includes("SQLSTATE 23505"))
  );
}

/**
 * Errors that say "the write did not happen, try again": the backend aborted the statement because
 * of a concurrent writer. Safe to retry a conditional single-document update after these.
 * - FerretDB on SQLite: `database is locked (SQLITE_BUSY)` / `SQLITE_BUSY_SNAPSHOT`;
 * - FerretDB on PostgreSQL: serialization failure (40001), deadlock detected (40P01);
 * - MongoDB: WriteConflict (112) and anything labelled TransientTransactionError.
 */
export function isWriteConflictError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errorLabels?: unknown; errorLabelSet?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  if (e.code === 112) return true;
  const labels = e.errorLabelSet instanceof Set ? [...e.errorLabelSet] : Array.isArray(e.errorLabels) ? e.errorLabels : [];
  if (labels.includes("TransientTransactionError")) return true;
  const msg = typeof e.message === "string" ? e.message : "";
  return /SQLITE_BUSY|database is locked|could not serialize access|deadlock detected|\(SQLSTATE 40001\)|\(SQLSTATE 40P01\)/i.test(
    msg,
  );
}

/**
 * The database cannot answer right now (a conflict that outlived the retries, no reachable server,
 * a server shutting down or stepping down). The API answers 503 with `Retry-After` for these,
 * never "internal error": the request may simply be repeated.
 */
export function isDatabaseUnavailableError(err: unknown): boolean {
  if (isWriteConflictError(err)) return true;
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  const name = typeof e.name === "string" ? e.name : "";
  if (
    /^Mongo(Network|NetworkTimeout|ServerSelection|ServerClosed|TopologyClosed|PoolCleared|NotConnected)Error$/.test(name) ||
    name === "InsertNotConfirmedError"
  ) {
    return true;
  }
  // ShutdownInProgress, InterruptedAtShutdown, NotWritablePrimary, PrimarySteppedDown, NetworkTimeout,
  // HostUnreachable, HostNotFound, SocketException, ExceededTimeLimit.
  if (typeof e.code === "number" && [91, 11600, 10107, 189, 89, 6, 7, 9001, 50].includes(e.code)) return true;
  const msg = typeof e.message === "string" ? e.message : "";
  return /buffering timed out|too many clients already|the database system is (starting up|shutting down)/i.test(msg);
}

/**
 * Run a single conditional write, retrying it (with jitter, a few times within ~1 s) while the
 * backend reports a write conflict. Other errors, and a conflict that outlives the retries, are
 * thrown (the API maps the latter to 503 + Retry-After).
 */
export async function retryWriteConflicts<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isWriteConflictError(err)) throw err;
      await new Promise((r) => setTimeout(r, 10 * 2 ** i + Math.random() * 20));
    }
  }
}
