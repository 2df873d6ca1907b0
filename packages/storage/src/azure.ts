import type { Readable } from "node:stream";
import { BlobServiceClient, type ContainerClient, RestError, StorageSharedKeyCredential } from "@azure/storage-blob";
import { BaseObjectStore, type Classified } from "./base";
import { type AzureCredentials, parseConnectionString, secretsOf } from "./credentials";
import { StorageError, type StorageErrorCode, statusToCode } from "./errors";
import type { ObjectInfo, ObjectStoreOptions, StoreDescription } from "./types";

const CODE_MAP: Record<string, StorageErrorCode> = {
  BlobNotFound: "NotFound",
  ContainerNotFound: "BucketNotFound",
  ContainerBeingDeleted: "BucketNotFound",
  AuthenticationFailed: "Unauthenticated",
  InvalidAuthenticationInfo: "Unauthenticated",
  NoAuthenticationInformation: "Unauthenticated",
  AuthorizationFailure: "AccessDenied",
  AuthorizationPermissionMismatch: "AccessDenied",
  AuthorizationResourceTypeMismatch: "AccessDenied",
  AccountIsDisabled: "AccessDenied",
  ContainerAlreadyExists: "Conflict",
  LeaseIdMissing: "Conflict",
  ServerBusy: "Unavailable",
  InternalError: "Unavailable",
  OperationTimedOut: "Unavailable",
};

/** Azure Blob Storage (block blobs) through `@azure/storage-blob`; works with Azurite. */
export class AzureObjectStore extends BaseObjectStore {
  readonly backend = "azure" as const;
  readonly #container: ContainerClient;
  readonly #endpoint: string;
  readonly #account: string;

  constructor(creds: AzureCredentials, options: ObjectStoreOptions = {}) {
    super(creds.container, secretsOf(creds), options);
    let service: BlobServiceClient;
    try {
      if (creds.connectionString !== undefined) {
        service = BlobServiceClient.fromConnectionString(creds.connectionString, {
          retryOptions: { maxTries: this.retries + 1 },
        });
      } else {
        const account = creds.accountName ?? "";
        const endpoint = creds.endpoint ?? `https://${account}.blob.core.windows.net`;
        service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, creds.accountKey ?? ""), {
          retryOptions: { maxTries: this.retries + 1 },
        });
      }
    } catch {
      // The SDK's own message may quote the connection string; ours names the problem only.
      throw new StorageError(
        "InvalidArgument",
        "azure: the connection string or account key could not be used (malformed)",
        "azure",
      );
    }
    this.#container = service.getContainerClient(creds.container);
    this.#endpoint = service.url.replace(/\/$/, "").replace(/\?.*$/, "");
    this.#account =
      service.accountName || creds.accountName || parseConnectionString(creds.connectionString ?? "").get("AccountName") || "";
  }

  describe(): StoreDescription {
    return { backend: "azure", bucket: this.bucket, endpoint: this.#endpoint, account: this.#account };
  }

  protected async upload(key: string, body: Readable, _size: number | undefined): Promise<void> {
    // Block upload: partSize-sized blocks staged in parallel, then one commit (Put Block List);
    // a failed upload commits nothing.
    await this.#container
      .getBlockBlobClient(key)
      .uploadStream(body, this.partSize, this.concurrency, { blobHTTPHeaders: { blobContentType: "application/octet-stream" } });
  }

  protected async download(key: string): Promise<Readable> {
    // The SDK resumes a broken download from the last byte read (maxRetryRequests).
    const res = await this.#container.getBlobClient(key).download(0, undefined, { maxRetryRequests: 5 });
    if (!res.readableStreamBody)
      throw new StorageError("Unknown", `azure get ${this.bucket}/${key}: empty response body`, "azure");
    return res.readableStreamBody as Readable;
  }

  protected async listAll(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for await (const page of this.#container.listBlobsFlat({ prefix: prefix || undefined }).byPage({ maxPageSize: 5000 })) {
      for (const b of page.segment.blobItems) {
        out.push({
          key: b.name,
          size: b.properties.contentLength ?? 0,
          ...(b.properties.lastModified ? { lastModified: b.properties.lastModified } : {}),
        });
      }
    }
    return out;
  }

  protected async head(key: string): Promise<{ size: number; lastModified?: Date } | null> {
    try {
      const p = await this.#container.getBlobClient(key).getProperties();
      return { size: p.contentLength ?? 0, ...(p.lastModified ? { lastModified: p.lastModified } : {}) };
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404 && errorCode(err) !== "ContainerNotFound") return null;
      throw err;
    }
  }

  protected async remove(key: string): Promise<void> {
    // deleteSnapshots "include": a blob with snapshots cannot be deleted otherwise.
    await this.#container.getBlobClient(key).deleteIfExists({ deleteSnapshots: "include" });
  }

  protected async probe(): Promise<void> {
    await this.#container.listBlobsFlat().byPage({ maxPageSize: 1 }).next();
  }

  protected classify(err: unknown, op: string): Classified {
    if (!(err instanceof RestError)) return { code: "Unknown", details: {} };
    const backendCode = errorCode(err);
    let code: StorageErrorCode = (backendCode && CODE_MAP[backendCode]) || statusToCode(err.statusCode);
    // Azurite answers a bad signature with AuthorizationFailure where Azure says AuthenticationFailed.
    if (code === "AccessDenied" && /failed to authenticate/i.test(err.message)) code = "Unauthenticated";
    if (code === "NotFound" && (op === "list" || op === "check")) code = "BucketNotFound";
    const requestId = err.response?.headers.get("x-ms-request-id") ?? undefined;
    // Azure's message is several lines (RequestId, Time, and for auth failures the signature it
    // computed); makeStorageError keeps the first line only.
    const message = err.message || (backendCode ? undefined : `HTTP ${err.statusCode}`);
    return { code, message, details: { backendCode, status: err.statusCode, requestId } };
  }

  // ---- container administration (tests, demo, setup tooling) ----
  async createBucket(): Promise<void> {
    await this.run("createContainer", undefined, () => this.#container.createIfNotExists());
  }

  async destroyBucket(): Promise<void> {
    await this.run("deleteContainer", undefined, () => this.#container.deleteIfExists());
  }
}

function errorCode(err: RestError): string | undefined {
  if (typeof err.code === "string" && err.code !== "") return err.code;
  const header = err.response?.headers.get("x-ms-error-code");
  if (header) return header;
  const details = err.details as { errorCode?: string } | undefined;
  return details?.errorCode;
}
