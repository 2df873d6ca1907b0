import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { BaseObjectStore, type Classified, MiB } from "./base";
import type { S3Credentials } from "./credentials";
import { StorageError, type StorageErrorCode, statusToCode } from "./errors";
import type { ObjectInfo, ObjectStoreOptions, StoreDescription } from "./types";

const S3_MIN_PART = 5 * MiB;
const S3_MAX_PARTS = 10_000;

const CODE_MAP: Record<string, StorageErrorCode> = {
  NoSuchKey: "NotFound",
  NotFound: "NotFound",
  NoSuchBucket: "BucketNotFound",
  InvalidAccessKeyId: "Unauthenticated",
  SignatureDoesNotMatch: "Unauthenticated",
  InvalidToken: "Unauthenticated",
  ExpiredToken: "Unauthenticated",
  TokenRefreshRequired: "Unauthenticated",
  AccessDenied: "AccessDenied",
  Forbidden: "AccessDenied",
  AllAccessDisabled: "AccessDenied",
  BucketAlreadyExists: "Conflict",
  BucketNotEmpty: "Conflict",
  SlowDown: "Unavailable",
  ServiceUnavailable: "Unavailable",
  InternalError: "Unavailable",
};

/** S3 and S3-compatible servers (MinIO, Ceph RGW, R2, …) through the official AWS SDK v3. */
export class S3ObjectStore extends BaseObjectStore {
  readonly backend = "s3" as const;
  readonly #client: S3Client;
  readonly #region: string;
  readonly #endpoint: string | undefined;

  constructor(creds: S3Credentials, options: ObjectStoreOptions = {}) {
    super(creds.bucket, [creds.secretAccessKey, ...(creds.sessionToken ? [creds.sessionToken] : [])], options);
    if (this.partSize < S3_MIN_PART) {
      throw new StorageError("InvalidArgument", "partSize must be at least 5 MiB for S3 (the multipart minimum)", "s3");
    }
    this.#region = creds.region ?? "us-east-1";
    this.#endpoint = creds.endpoint;
    this.#client = new S3Client({
      region: this.#region,
      endpoint: creds.endpoint,
      // S3-compatible servers are usually addressed by path (no per-bucket DNS names).
      forcePathStyle: creds.forcePathStyle ?? creds.endpoint !== undefined,
      credentials: {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        sessionToken: creds.sessionToken,
      },
      maxAttempts: this.retries + 1,
      // Fail a dead connection instead of hanging: connect within 10 s, and no socket may sit
      // idle for 5 min (generous: a download paused by a slow consumer is idle too).
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 300_000 },
    });
  }

  describe(): StoreDescription {
    return { backend: "s3", bucket: this.bucket, region: this.#region, ...(this.#endpoint ? { endpoint: this.#endpoint } : {}) };
  }

  /** Part size for an object of `size` bytes: never more than 10,000 parts. */
  partSizeFor(size: number | undefined): number {
    if (size === undefined) return this.partSize;
    return Math.max(this.partSize, Math.ceil(size / S3_MAX_PARTS / MiB) * MiB);
  }

  protected async upload(key: string, body: Readable, size: number | undefined): Promise<void> {
    // lib-storage sends one PutObject when the body fits in one part, else a multipart upload
    // (parts in parallel, aborted on failure so no parts are left behind).
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: "application/octet-stream" },
      partSize: this.partSizeFor(size),
      queueSize: this.concurrency,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  protected async download(key: string): Promise<Readable> {
    const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!res.Body) throw new StorageError("Unknown", `s3 get ${this.bucket}/${key}: empty response body`, "s3");
    return res.Body as Readable;
  }

  protected async listAll(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: token, MaxKeys: 1000 }),
      );
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue;
        out.push({ key: o.Key, size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  protected async head(key: string): Promise<{ size: number; lastModified?: Date } | null> {
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: res.ContentLength ?? 0, ...(res.LastModified ? { lastModified: res.LastModified } : {}) };
    } catch (err) {
      // HEAD responses have no body: a missing key and a missing bucket both read as 404.
      if (httpStatus(err) === 404) return null;
      throw err;
    }
  }

  protected async remove(key: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  protected override async removeMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const res = await this.#client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new StorageError(
          CODE_MAP[first.Code ?? ""] ?? "Unknown",
          `s3 deletePrefix ${this.bucket}: ${failed.length} of ${batch.length} deletes failed (first: ${first.Key}: ${first.Code ?? "?"} ${first.Message ?? ""})`,
          "s3",
          { backendCode: first.Code },
        );
      }
    }
  }

  protected async probe(): Promise<void> {
    await this.#client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }));
  }

  protected classify(err: unknown, op: string): Classified {
    const status = httpStatus(err);
    const rawName = err instanceof Error ? err.name : undefined;
    // Bodiless error responses (HEAD) come back named "Unknown"/"UnknownError": no code to show.
    const name = rawName === "Unknown" || rawName === "UnknownError" || rawName === "Error" ? undefined : rawName;
    const requestId = (err as { $metadata?: { requestId?: string } })?.$metadata?.requestId;
    let code: StorageErrorCode = (name && CODE_MAP[name]) || statusToCode(status);
    if (code === "NotFound" && (op === "list" || op === "check")) code = "BucketNotFound";
    // The SDK says "UnknownError" for bodiless error responses (HEAD); the status says more.
    const message = err instanceof S3ServiceException && err.message === "UnknownError" ? `HTTP ${status}` : undefined;
    return { code, message, details: { backendCode: name, status, requestId } };
  }

  // ---- bucket administration (tests, demo, setup tooling) ----
  async createBucket(): Promise<void> {
    await this.run("createBucket", undefined, async () => {
      try {
        await this.#client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (err) {
        if (err instanceof Error && err.name === "BucketAlreadyOwnedByYou") return;
        throw err;
      }
    });
  }

  /** Deletes every object, aborts unfinished multipart uploads, then deletes the bucket. */
  async destroyBucket(): Promise<void> {
    const objects = await this.list("");
    await this.run("destroyBucket", undefined, async () => {
      if (objects.length > 0) await this.removeMany(objects.map((o) => o.key));
      const uploads = await this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket }));
      for (const u of uploads.Uploads ?? []) {
        await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
      }
      try {
        await this.#client.send(new DeleteBucketCommand({ Bucket: this.bucket }));
      } catch (err) {
        if (httpStatus(err) === 404) return;
        throw err;
      }
    });
  }

  /** Counts unfinished multipart uploads (a failed upload must leave none behind). */
  async pendingMultipartUploads(): Promise<number> {
    const res = await this.run("listMultipartUploads", undefined, () =>
      this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket })),
    );
    return res.Uploads?.length ?? 0;
  }

  override close(): void {
    this.#client.destroy();
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}
