import { type HydratedDocument, type Model, mongo } from "mongoose";

interface Waiting {
  doc: Record<string, unknown>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Inserts into one collection in groups (group commit): while one `insertMany` is on its way, the
 * documents that arrive wait and go together in the next. No timer: alone, a document goes at
 * once; under load a group grows to what arrived meanwhile (at most `maxGroup`). On FerretDB each
 * insert is a PostgreSQL transaction, so 16 single inserts cost ~4.6× one insert of 16 (measured:
 * 676 vs 3,093 documents/s at 16 concurrent); the submit path's two inserts are where it pays.
 *
 * Each caller gets its own document's outcome: a duplicate key rejects only that insert (with
 * the server's error, so isDuplicateKeyError still recognises it). Documents are cast, defaulted,
 * validated and timestamped by the model exactly as `Model.create` would.
 */
export class GroupInsert<T> {
  private waiting: Waiting[] = [];
  private flushing = false;

  constructor(
    private readonly model: Model<T>,
    private readonly maxGroup = 256,
  ) {}

  /** Insert one document; resolves to it (hydrated) once its group is written. */
  async insert(fields: Record<string, unknown>): Promise<HydratedDocument<T>> {
    const doc = new this.model(fields) as HydratedDocument<T>;
    await doc.validate();
    // As Model.insertMany does: the schema's timestamps, then the version key at 0.
    if (this.model.schema.options.timestamps) (doc as unknown as { initializeTimestamps(): void }).initializeTimestamps();
    const raw = doc.toBSON() as Record<string, unknown>;
    const versionKey = this.model.schema.options.versionKey;
    if (typeof versionKey === "string" && !(versionKey in raw)) raw[versionKey] = 0;
    await new Promise<void>((resolve, reject) => {
      this.waiting.push({ doc: raw, resolve, reject });
      void this.flush();
    });
    doc.isNew = false;
    return doc;
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.waiting.length) {
        const group = this.waiting.splice(0, this.maxGroup);
        await this.write(group);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async write(group: Waiting[]): Promise<void> {
    const failed = new Map<number, unknown>();
    let insertedCount: number;
    try {
      insertedCount = (
        await this.model.collection.insertMany(
          group.map((w) => w.doc),
          { ordered: false },
        )
      ).insertedCount;
    } catch (err) {
      if (!(err instanceof mongo.MongoBulkWriteError)) {
        for (const w of group) w.reject(err);
        return;
      }
      const writeErrors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      for (const we of writeErrors) failed.set(we.index, Object.assign(new Error(we.errmsg ?? err.message), { code: we.code }));
      insertedCount = err.insertedCount;
    }
    const rest = group.filter((_, i) => !failed.has(i));
    group.forEach((w, i) => {
      if (failed.has(i)) w.reject(failed.get(i));
    });
    if (insertedCount === rest.length) {
      for (const w of rest) w.resolve();
      return;
    }
    // The counts do not add up: FerretDB v1 answered a restart-time insert with n: 0 and no error
    // (tests/faults.int.test.ts, "the database restarted under load"). Only what reads back was stored.
    try {
      const ids = rest.map((w) => w.doc._id as mongo.ObjectId);
      const found = await this.model.collection.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray();
      const stored = new Set(found.map((d) => String(d._id)));
      for (const w of rest) {
        if (stored.has(String(w.doc._id))) w.resolve();
        else w.reject(new InsertNotConfirmedError());
      }
    } catch (err) {
      for (const w of rest) w.reject(err);
    }
  }
}

/** The database answered an insert without confirming this document, and it did not read back. */
export class InsertNotConfirmedError extends Error {
  override name = "InsertNotConfirmedError";
  constructor() {
    super("the database did not confirm the insert; it may be restarting");
  }
}
