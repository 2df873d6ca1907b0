import { createReadStream } from "node:fs";
import { stat as fsStat } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { inspect } from "node:util";
import {
  type ErrorContext,
  makeStorageError,
  networkCode,
  StorageError,
  type StorageErrorCode,
  type StorageErrorDetails,
} from "./errors";
import { assertDirPrefix, assertObjectKey, assertPrefix } from "./keys";
import { counted, mapLimit, writeFileAtomic } from "./streams";
import type { ObjectBackend, ObjectInfo, ObjectStore, ObjectStoreOptions, StoreDescription } from "./types";

export const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 16 * MiB;
export const DEFAULT_CONCURRENCY = 4;

/** A backend failure, classified by the backend's adapter. */
export interface Classified {
  code: StorageErrorCode;
  message?: string;
  details: StorageErrorDetails;
}

/**
 * Shared behaviour of every object store: argument checks, error wrapping (no raw SDK error ever
 * escapes, and no secret appears in a message), stream plumbing, and safe logging — `toJSON`,
 * `toString` and `util.inspect` show only {@link StoreDescription}; the SDK client and the
 * secrets live in private fields that neither JSON nor `inspect` reveal.
 */
export abstract class BaseObjectStore implements ObjectStore {
  abstract readonly backend: ObjectBackend;
  readonly #secrets: readonly string[];
  protected readonly partSize: number;
  protected readonly concurrency: number;
  protected readonly retries: number;

  protected constructor(
    readonly bucket: string,
    secrets: readonly string[],
    options: ObjectStoreOptions = {},
  ) {
    this.#secrets = secrets;
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(partSize) || partSize < 256 * 1024 || partSize > 4000 * MiB) {
      throw new StorageError("InvalidArgument", "partSize must be an integer between 256 KiB and 4000 MiB");
    }
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new StorageError("InvalidArgument", "concurrency must be an integer between 1 and 64");
    }
    const retries = options.retries ?? 3;
    if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
      throw new StorageError("InvalidArgument", "retries must be an integer between 0 and 10");
    }
    this.retries = retries;
    this.partSize = partSize;
    this.concurrency = concurrency;
  }

  // ---- backend primitives (arguments already validated; may throw raw SDK errors) ----
  protected abstract upload(key: string, body: Readable, size: number | undefined): Promise<void>;
  protected abstract download(key: string): Promise<Readable>;
  protected abstract listAll(prefix: string): Promise<ObjectInfo[]>;
  /** null when the object does not exist. */
  protected abstract head(key: string): Promise<{ size: number; lastModified?: Date } | null>;
  /** Must not fail for a missing key. */
  protected abstract remove(key: string): Promise<void>;
  /** Deletes many keys; default: one by one, `concurrency × 4` at a time. */
  protected async removeMany(keys: string[]): Promise<void> {
    await mapLimit(keys, this.concurrency * 4, (k) => this.remove(k));
  }
  protected abstract probe(): Promise<void>;
  protected abstract classify(err: unknown, op: string): Classified;
  abstract describe(): StoreDescription;

  // ---- public API ----
  async putFile(localPath: string, key: string): Promise<{ size: number }> {
    assertObjectKey(key);
    let size: number;
    try {
      const st = await fsStat(localPath);
      if (!st.isFile())
        throw new StorageError("InvalidArgument", `${this.backend} putFile: ${localPath} is not a regular file`, this.backend);
      size = st.size;
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError(
        "InvalidArgument",
        `${this.backend} putFile: cannot read ${localPath}: ${(err as Error).message}`,
        this.backend,
      );
    }
    return this.putStream(key, createReadStream(localPath), size);
  }

  async putStream(key: string, body: NodeJS.ReadableStream, size?: number): Promise<{ size: number }> {
    assertObjectKey(key);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new StorageError("InvalidArgument", "size must be a non-negative integer", this.backend);
    }
    const counter = counted(body);
    try {
      await this.run("put", key, () => this.upload(key, counter, size));
    } catch (err) {
      // Release the source (an open file, an SFTP handle) that the failed upload stopped reading.
      counter.destroy();
      (body as Partial<Readable>).destroy?.();
      throw err;
    }
    if (size !== undefined && counter.bytes !== size) {
      await this.remove(key).catch(() => undefined);
      throw new StorageError(
        "Integrity",
        `${this.backend} put ${this.bucket}/${key}: the stream yielded ${counter.bytes} bytes, expected ${size}; the object was removed`,
        this.backend,
      );
    }
    return { size: counter.bytes };
  }

  async getStream(key: string): Promise<NodeJS.ReadableStream> {
    assertObjectKey(key);
    const src = await this.run("get", key, () => this.download(key));
    // Errors while streaming are wrapped too: the consumer never sees a raw SDK error.
    const out = new PassThrough();
    src.on("error", (err) => out.destroy(this.wrap(err, "get", key)));
    out.on("close", () => {
      if (!src.destroyed) src.destroy();
    });
    src.pipe(out);
    return out;
  }

  async getToFile(key: string, localPath: string): Promise<{ size: number }> {
    const body = await this.getStream(key);
    try {
      return { size: await writeFileAtomic(body, localPath) };
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError(
        "Unknown",
        `${this.backend} get ${this.bucket}/${key} → ${localPath}: ${(err as Error).message}`,
        this.backend,
      );
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertPrefix(prefix);
    const items = await this.run("list", prefix, () => this.listAll(prefix));
    return items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async stat(key: string): Promise<{ size: number; lastModified?: Date } | null> {
    assertObjectKey(key);
    return this.run("stat", key, () => this.head(key));
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    await this.run("delete", key, () => this.remove(key));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertDirPrefix(prefix);
    let total = 0;
    // Re-list until nothing is left: a listing is paged and may lag behind deletes.
    for (let round = 0; round < 10; round++) {
      const keys = (await this.list(prefix)).map((o) => o.key);
      if (keys.length === 0) return total;
      await this.run("deletePrefix", prefix, () => this.removeMany(keys));
      total += keys.length;
    }
    throw new StorageError(
      "Unknown",
      `${this.backend} deletePrefix ${this.bucket}/${prefix}: objects keep appearing under the prefix`,
      this.backend,
    );
  }

  async check(): Promise<void> {
    await this.run("check", undefined, () => this.probe());
  }

  close(): void {}

  toJSON(): StoreDescription {
    return this.describe();
  }
  toString(): string {
    const d = this.describe();
    return `ObjectStore(${d.backend}://${d.bucket}${d.endpoint ? ` at ${d.endpoint}` : ""})`;
  }
  [inspect.custom](): string {
    return this.toString();
  }

  // ---- error handling ----
  protected async run<T>(op: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.wrap(err, op, key);
    }
  }

  protected wrap(err: unknown, op: string, key?: string): StorageError {
    if (err instanceof StorageError) return err;
    const ctx: ErrorContext = { backend: this.backend, bucket: this.bucket, operation: op, key, secrets: this.#secrets };
    const net = networkCode(err);
    if (net) {
      const d = this.describe();
      return makeStorageError(ctx, "Unavailable", `${net}${d.endpoint ? ` (${d.endpoint})` : ""}`, {});
    }
    let c: Classified;
    try {
      c = this.classify(err, op);
    } catch {
      c = { code: "Unknown", details: {} };
    }
    const message = c.message ?? (err instanceof Error ? err.message : String(err));
    return makeStorageError(ctx, c.code, message, c.details);
  }
}
