import { Readable } from "node:stream";
import { BaseObjectStore, type Classified } from "./base";
import { StorageError } from "./errors";
import type { ObjectBackend, ObjectInfo, ObjectStoreOptions, StoreDescription } from "./types";

/**
 * An in-memory {@link ObjectStore} with the same argument checks and error behaviour as the
 * real ones, for unit tests of code that uses a store (no server needed).
 */
export class MemoryObjectStore extends BaseObjectStore {
  readonly backend: ObjectBackend;
  readonly objects = new Map<string, { data: Buffer; lastModified: Date }>();

  constructor(bucket = "memory", backend: ObjectBackend = "s3", options: ObjectStoreOptions = {}) {
    super(bucket, [], options);
    this.backend = backend;
  }

  describe(): StoreDescription {
    return { backend: this.backend, bucket: this.bucket, endpoint: "memory:" };
  }

  protected async upload(key: string, body: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    this.objects.set(key, { data: Buffer.concat(chunks), lastModified: new Date() });
  }

  protected async download(key: string): Promise<Readable> {
    const o = this.objects.get(key);
    if (!o) throw new StorageError("NotFound", `${this.backend} get ${this.bucket}/${key}: no such object`, this.backend);
    return Readable.from([o.data]);
  }

  protected async listAll(prefix: string): Promise<ObjectInfo[]> {
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, o]) => ({ key, size: o.data.length, lastModified: o.lastModified }));
  }

  protected async head(key: string): Promise<{ size: number; lastModified?: Date } | null> {
    const o = this.objects.get(key);
    return o ? { size: o.data.length, lastModified: o.lastModified } : null;
  }

  protected async remove(key: string): Promise<void> {
    this.objects.delete(key);
  }

  protected async probe(): Promise<void> {}

  protected classify(): Classified {
    return { code: "Unknown", details: {} };
  }
}
