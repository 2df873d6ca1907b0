import type { ObjectBackend } from "./types";

/**
 * What went wrong, independent of the backend. `Unauthenticated` means the credentials were
 * refused (unknown key, bad signature); `AccessDenied` means they were accepted but may not do
 * this; `BucketNotFound` means the bucket/container does not exist.
 */
export type StorageErrorCode =
  | "InvalidArgument"
  | "NotFound"
  | "BucketNotFound"
  | "Unauthenticated"
  | "AccessDenied"
  | "Conflict"
  | "Unavailable"
  | "Integrity"
  | "Unknown";

export interface StorageErrorDetails {
  /** The backend's own error code (e.g. `SignatureDoesNotMatch`, `AuthenticationFailed`). */
  backendCode?: string;
  /** HTTP status, when there was a response. */
  status?: number;
  /** The backend's request id, for support tickets. */
  requestId?: string;
}

/**
 * Every error this package throws. The message says what failed, on which backend, bucket and
 * key, and what to check; it never contains a secret (the backend's own message is scrubbed of
 * every secret this store knows). The backend SDK's error object is deliberately NOT attached as
 * `cause`: SDK errors carry requests, headers and signatures that a logger would print.
 */
export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly backend?: ObjectBackend,
    readonly details: StorageErrorDetails = {},
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, backend: this.backend, message: this.message, ...this.details };
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/** Replaces every occurrence of each secret (and of its base64/URL-encoded forms) in `text`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue; // too short to be a real secret; replacing would mangle text
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      out = out.split(form).join("[redacted]");
    }
  }
  return out;
}

const HINTS: Partial<Record<StorageErrorCode, string>> = {
  Unauthenticated: "the storage credentials were rejected: check the access key / account key / service account",
  AccessDenied: "access denied: the credentials were refused or lack permission for this bucket or object",
  BucketNotFound: "the bucket or container does not exist",
  NotFound: "no such object",
  Unavailable: "the storage endpoint could not be reached",
};

export interface ErrorContext {
  backend: ObjectBackend;
  bucket: string;
  operation: string;
  key?: string;
  secrets: readonly string[];
}

/** Builds the StorageError for a classified backend failure. */
export function makeStorageError(
  ctx: ErrorContext,
  code: StorageErrorCode,
  backendMessage: string | undefined,
  details: StorageErrorDetails,
): StorageError {
  const where = ctx.key === undefined ? `${ctx.bucket}` : `${ctx.bucket}/${ctx.key}`;
  const hint = HINTS[code];
  const raw = (backendMessage ?? "").split("\n")[0]?.trim() ?? ""; // Azure appends RequestId/Time lines
  const parts = [hint, raw && `${details.backendCode ? `${details.backendCode}: ` : ""}${raw}`].filter(Boolean);
  const message = scrubSecrets(`${ctx.backend} ${ctx.operation} ${where}: ${parts.join(" — ") || code}`, ctx.secrets);
  return new StorageError(code, message, ctx.backend, details);
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Network-level failure (no HTTP response): returns its code, else undefined. */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    const errors = (e as { errors?: unknown }).errors; // AggregateError from happy-eyeballs connects
    if (Array.isArray(errors)) {
      for (const inner of errors) {
        const c = (inner as { code?: unknown })?.code;
        if (typeof c === "string" && NETWORK_CODES.has(c)) return c;
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function statusToCode(status: number | undefined): StorageErrorCode {
  if (status === 401) return "Unauthenticated";
  if (status === 403) return "AccessDenied";
  if (status === 404) return "NotFound";
  if (status === 409 || status === 412) return "Conflict";
  if (status !== undefined && (status === 429 || status >= 500)) return "Unavailable";
  if (status !== undefined && status >= 400) return "InvalidArgument";
  return "Unknown";
}
