export type ObjectBackend = "s3" | "azure" | "gcs";

/** Where an object (or a directory of objects: a key prefix) lives in an object store. */
export interface ObjectLocation {
  backend: ObjectBackend;
  /** S3/GCS bucket, or Azure container. */
  bucket: string;
  /** Object key (or key prefix); never starts with `/`. May be empty (the whole bucket). */
  key: string;
}

/** A path on the node's own filesystem (or a shared mount the node sees). */
export interface NodeLocation {
  backend: "node";
  path: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
}

/**
 * One object store bucket/container. Keys are `/`-separated, relative, without `.`/`..` segments.
 * Every method throws {@link StorageError} (never a raw SDK error) with a message free of secrets.
 */
export interface ObjectStore {
  readonly backend: ObjectBackend;
  /** The bucket (S3, GCS) or container (Azure) this store writes to. */
  readonly bucket: string;
  /** Streams a local file up (multipart/block/resumable uploads for large files). */
  putFile(localPath: string, key: string): Promise<{ size: number }>;
  /**
   * Streams `body` up. If `size` is given it must match the number of bytes the stream yields
   * (the upload fails otherwise, and nothing is left under `key`); it lets S3 pick a part size
   * that stays under 10,000 parts for very large objects.
   */
  putStream(key: string, body: NodeJS.ReadableStream, size?: number): Promise<{ size: number }>;
  /** Downloads to `localPath` (parent directories are created; written to a temp file, then renamed). */
  getToFile(key: string, localPath: string): Promise<{ size: number }>;
  /** Resolves once the object is known to exist (a missing key rejects with code `NotFound`). */
  getStream(key: string): Promise<NodeJS.ReadableStream>;
  /** Every object whose key starts with `prefix` (plain string prefix), in key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Size of the object, or null if there is none. */
  stat(key: string): Promise<{ size: number; lastModified?: Date } | null>;
  /** Deletes one object; deleting a missing key is fine. */
  delete(key: string): Promise<void>;
  /**
   * Deletes every object under a directory prefix and returns how many were deleted. The prefix
   * must end with `/` (so `ckpt/step-10/` can never take `ckpt/step-100/` with it) and must not
   * be empty (use a bucket lifecycle rule to empty a bucket, not this).
   */
  deletePrefix(prefix: string): Promise<number>;
  /** Verifies that the credentials work and the bucket exists (one cheap list call). */
  check(): Promise<void>;
  /** Releases the client's pooled connections; the store must not be used afterwards. */
  close(): void;
  /** A description safe to log: backend, bucket, endpoint; never credentials. */
  describe(): StoreDescription;
}

export interface StoreDescription {
  backend: ObjectBackend;
  bucket: string;
  endpoint?: string;
  region?: string;
  account?: string;
}

export interface ObjectStoreOptions {
  /**
   * Upload part size in bytes: S3 multipart part, Azure block, GCS resumable chunk. Default
   * 16 MiB. S3 needs at least 5 MiB; GCS needs a multiple of 256 KiB (rounded up). Objects
   * smaller than one part are uploaded in a single request.
   */
  partSize?: number;
  /** Parts uploaded in parallel per object (S3, Azure). Default 4. Memory ≈ partSize × this. */
  concurrency?: number;
  /** Retries of a failed request (network error, 5xx, throttling), with backoff. Default 3. */
  retries?: number;
}
