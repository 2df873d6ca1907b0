import { AzureObjectStore } from "./azure";
import { parseStorageCredentials, type StorageCredentials } from "./credentials";
import { GcsObjectStore } from "./gcs";
import { S3ObjectStore } from "./s3";
import type { ObjectStore, ObjectStoreOptions } from "./types";

/** A store that can also create and remove its own bucket/container (setup tooling, tests). */
export type AdminObjectStore = ObjectStore & {
  createBucket(): Promise<void>;
  /** Deletes every object in the bucket and then the bucket. */
  destroyBucket(): Promise<void>;
};

/**
 * Creates the store for validated-or-not credentials (they are checked against
 * {@link storageCredentialsSchema}; a problem throws StorageError `InvalidArgument`, naming the
 * field, never its value). Creating a store does no I/O; call `check()` to verify access.
 */
export function createObjectStore(creds: StorageCredentials, options?: ObjectStoreOptions): AdminObjectStore {
  const c = parseStorageCredentials(creds);
  switch (c.backend) {
    case "s3":
      return new S3ObjectStore(c, options);
    case "azure":
      return new AzureObjectStore(c, options);
    case "gcs":
      return new GcsObjectStore(c, options);
  }
}

/** Creates the bucket/container if it does not exist. */
export async function ensureBucket(creds: StorageCredentials): Promise<void> {
  await createObjectStore(creds).createBucket();
}

/** Deletes every object in the bucket/container, then the bucket itself. Missing is fine. */
export async function deleteBucket(creds: StorageCredentials): Promise<void> {
  await createObjectStore(creds).destroyBucket();
}
