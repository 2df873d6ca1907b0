export { AzureObjectStore } from "./azure";
export { BaseObjectStore, DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE } from "./base";
export {
  type AzureCredentials,
  type GcsCredentials,
  parseStorageCredentials,
  redactCredentials,
  type S3Credentials,
  SECRET_FIELDS,
  STORAGE_REDACT_PATHS,
  type StorageCredentials,
  secretsOf,
  storageCredentialsSchema,
} from "./credentials";
export {
  downloadDirectory,
  downloadTree,
  localDirectorySink,
  localDirectorySource,
  type TransferOptions,
  type TransferResult,
  type TransferredFile,
  type TreeFile,
  type TreeSink,
  type TreeSource,
  uploadDirectory,
  uploadTree,
} from "./directory";
export { isStorageError, StorageError, type StorageErrorCode, type StorageErrorDetails, scrubSecrets } from "./errors";
export { GcsObjectStore } from "./gcs";
export { assertDirPrefix, assertObjectKey, assertPrefix, joinKey, toDirPrefix } from "./keys";
export { MemoryObjectStore } from "./memory";
export { S3ObjectStore } from "./s3";
export { type AdminObjectStore, createObjectStore, deleteBucket, ensureBucket } from "./store";
export type {
  NodeLocation,
  ObjectBackend,
  ObjectInfo,
  ObjectLocation,
  ObjectStore,
  ObjectStoreOptions,
  StoreDescription,
} from "./types";
export { formatStorageUri, isObjectLocation, parseStorageUri } from "./uri";
