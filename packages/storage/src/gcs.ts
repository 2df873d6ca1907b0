import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ApiError, type Bucket, Storage } from "@google-cloud/storage";
import { BaseObjectStore, type Classified } from "./base";
import { type GcsCredentials, secretsOf } from "./credentials";
import { type StorageErrorCode, statusToCode } from "./errors";
import type { ObjectInfo, ObjectStoreOptions, StoreDescription } from "./types";

const CHUNK_QUANTUM = 256 * 1024; // resumable chunks must be multiples of 256 KiB

const REASON_MAP: Record<string, StorageErrorCode> = {
  authError: "Unauthenticated",
  unauthorized: "Unauthenticated",
  required: "Unauthenticated",
  forbidden: "AccessDenied",
  insufficientPermissions: "AccessDenied",
  conflict: "Conflict",
  rateLimitExceeded: "Unavailable",
  backendError: "Unavailable",
};

/** Google Cloud Storage through `@google-cloud/storage`; works with fake-gcs-server. */
export class GcsObjectStore extends BaseObjectStore {
  readonly backend = "gcs" as const;
  readonly #storage: Storage;
  readonly #bucket: Bucket;
  readonly #endpoint: string | undefined;

  constructor(creds: GcsCredentials, options: ObjectStoreOptions = {}) {
    super(creds.bucket, secretsOf(creds), options);
    this.#endpoint = creds.apiEndpoint?.replace(/\/$/, "");
    this.#storage = new Storage({
      ...(creds.projectId ? { projectId: creds.projectId } : {}),
      ...(this.#endpoint ? { apiEndpoint: this.#endpoint } : {}),
      ...(creds.credentials
        ? {
            credentials: {
              client_email: creds.credentials.client_email,
              // Keys pasted through env vars often carry literal "\n".
              private_key: creds.credentials.private_key.replace(/\\n/g, "\n"),
            },
          }
        : {}),
      // A custom endpoint (emulator, private endpoint) is only authenticated when credentials
      // are given; without them the SDK would otherwise probe for default credentials.
      useAuthWithCustomEndpoint: this.#endpoint !== undefined && creds.credentials !== undefined,
      retryOptions: { autoRetry: this.retries > 0, maxRetries: Math.max(1, this.retries) },
    });
    this.#bucket = this.#storage.bucket(creds.bucket);
  }

  describe(): StoreDescription {
    return { backend: "gcs", bucket: this.bucket, ...(this.#endpoint ? { endpoint: this.#endpoint } : {}) };
  }

  /** Resumable-upload chunk size: partSize rounded up to a multiple of 256 KiB. */
  get chunkSize(): number {
    return Math.ceil(this.partSize / CHUNK_QUANTUM) * CHUNK_QUANTUM;
  }

  protected async upload(key: string, body: Readable, size: number | undefined): Promise<void> {
    // Small known-size objects: one multipart request. Otherwise a resumable upload session,
    // sent in chunkSize pieces (each retried on its own), finalized only when the stream ends.
    const resumable = size === undefined || size > this.chunkSize;
    const sink = this.#bucket.file(key).createWriteStream({
      resumable,
      ...(resumable ? { chunkSize: this.chunkSize } : {}),
      contentType: "application/octet-stream",
      validation: "crc32c",
      metadata: { contentType: "application/octet-stream" },
    });
    await pipeline(body, sink);
  }

  protected async download(key: string): Promise<Readable> {
    const file = this.#bucket.file(key);
    await file.getMetadata(); // reject missing keys before handing out a stream
    return file.createReadStream({ validation: "crc32c" });
  }

  protected async listAll(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.#bucket.getFiles({
        ...(prefix ? { prefix } : {}),
        autoPaginate: false,
        maxResults: 1000,
        ...(pageToken ? { pageToken } : {}),
      });
      for (const f of files) {
        const updated = f.metadata.updated;
        out.push({ key: f.name, size: Number(f.metadata.size ?? 0), ...(updated ? { lastModified: new Date(updated) } : {}) });
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return out;
  }

  protected async head(key: string): Promise<{ size: number; lastModified?: Date } | null> {
    try {
      const [m] = await this.#bucket.file(key).getMetadata();
      return { size: Number(m.size ?? 0), ...(m.updated ? { lastModified: new Date(m.updated) } : {}) };
    } catch (err) {
      if (err instanceof ApiError && err.code === 404 && !/bucket/i.test(err.message)) return null;
      throw err;
    }
  }

  protected async remove(key: string): Promise<void> {
    await this.#bucket.file(key).delete({ ignoreNotFound: true });
  }

  protected async probe(): Promise<void> {
    await this.#bucket.getFiles({ autoPaginate: false, maxResults: 1 });
  }

  protected classify(err: unknown, op: string): Classified {
    const status = err instanceof ApiError ? err.code : (err as { status?: number; code?: unknown })?.status;
    const reason = err instanceof ApiError ? err.errors?.[0]?.reason : undefined;
    // google-auth-library failures (bad key, token endpoint refused) surface as plain errors
    const authFailure =
      err instanceof Error &&
      /invalid_grant|invalid_client|unauthorized_client|DECODER routines|Could not load the default credentials/i.test(
        err.message,
      );
    let code: StorageErrorCode = authFailure ? "Unauthenticated" : (reason && REASON_MAP[reason]) || statusToCode(status);
    if (code === "NotFound" && (op === "list" || op === "check" || (err instanceof Error && /bucket/i.test(err.message)))) {
      code = "BucketNotFound";
    }
    return { code, details: { backendCode: reason, status } };
  }

  // ---- bucket administration (tests, demo, setup tooling) ----
  async createBucket(): Promise<void> {
    await this.run("createBucket", undefined, async () => {
      try {
        await this.#storage.createBucket(this.bucket);
      } catch (err) {
        if (err instanceof ApiError && err.code === 409) return;
        throw err;
      }
    });
  }

  async destroyBucket(): Promise<void> {
    const objects = await this.list("");
    await this.run("destroyBucket", undefined, async () => {
      await this.removeMany(objects.map((o) => o.key));
      try {
        await this.#bucket.delete();
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return;
        throw err;
      }
    });
  }
}
