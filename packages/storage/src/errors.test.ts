import { generateKeyPairSync } from "node:crypto";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { RestError } from "@azure/storage-blob";
import { ApiError } from "@google-cloud/storage";
import { describe, expect, it } from "vitest";
import type { StorageCredentials } from "./credentials";
import type { StorageError } from "./errors";
import { createObjectStore } from "./store";

const SECRET = "c2VjcmV0LWF6dXJlLWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OQ==";
const PEM = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const PEM_LINE = PEM.split("\n")[2]!;
const creds: Record<string, StorageCredentials> = {
  s3: { backend: "s3", bucket: "ckpts", endpoint: "http://127.0.0.1:9", accessKeyId: "AKIA", secretAccessKey: SECRET },
  azure: { backend: "azure", container: "ckpts", accountName: "acct1", accountKey: SECRET, endpoint: "http://127.0.0.1:9/acct1" },
  gcs: {
    backend: "gcs",
    bucket: "ckpts",
    apiEndpoint: "http://127.0.0.1:9",
    projectId: "p",
    credentials: { client_email: "sa@p.iam.gserviceaccount.com", private_key: PEM },
  },
};

/** Runs a backend SDK error through the store's error mapping (what every public method does). */
function mapped(backend: string, err: unknown, op = "get", key: string | undefined = "a/b"): StorageError {
  const store = createObjectStore(creds[backend]!) as unknown as { wrap(e: unknown, op: string, key?: string): StorageError };
  return store.wrap(err, op, key);
}

const gcsError = (code: number, message: string, reason?: string) =>
  Object.assign(new ApiError(message), { code, errors: reason ? [{ reason, message }] : [] });

const s3Error = (name: string, status: number, message: string) =>
  new S3ServiceException({ name, $fault: "client", $metadata: { httpStatusCode: status, requestId: "RID" }, message });

describe("backend error mapping", () => {
  it("S3", () => {
    expect(mapped("s3", s3Error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match")).code).toBe(
      "Unauthenticated",
    );
    expect(mapped("s3", s3Error("InvalidAccessKeyId", 403, "no such key id")).code).toBe("Unauthenticated");
    expect(mapped("s3", s3Error("AccessDenied", 403, "Access Denied")).code).toBe("AccessDenied");
    expect(mapped("s3", s3Error("NoSuchKey", 404, "The specified key does not exist.")).code).toBe("NotFound");
    expect(mapped("s3", s3Error("NoSuchBucket", 404, "The specified bucket does not exist")).code).toBe("BucketNotFound");
    expect(mapped("s3", s3Error("SlowDown", 503, "Please reduce your request rate.")).code).toBe("Unavailable");
    const head = mapped("s3", s3Error("Unknown", 403, "UnknownError"), "stat");
    expect(head.code).toBe("AccessDenied");
    expect(head.message).toBe(
      "s3 stat ckpts/a/b: access denied: the credentials were refused or lack permission for this bucket or object — HTTP 403",
    );
    expect(head.details).toEqual({ backendCode: undefined, status: 403, requestId: "RID" });
  });

  it("Azure", () => {
    const auth = new RestError("Server failed to authenticate the request.\nRequestId:1\nTime:2", {
      code: "AuthenticationFailed",
      statusCode: 403,
    });
    const e = mapped("azure", auth);
    expect(e.code).toBe("Unauthenticated");
    expect(e.message).toBe(
      "azure get ckpts/a/b: the storage credentials were rejected: check the access key / account key / service account — AuthenticationFailed: Server failed to authenticate the request.",
    );
    expect(mapped("azure", new RestError("denied", { code: "AuthorizationPermissionMismatch", statusCode: 403 })).code).toBe(
      "AccessDenied",
    );
    expect(mapped("azure", new RestError("nope", { code: "BlobNotFound", statusCode: 404 })).code).toBe("NotFound");
    expect(mapped("azure", new RestError("nope", { code: "ContainerNotFound", statusCode: 404 })).code).toBe("BucketNotFound");
    expect(mapped("azure", new RestError("busy", { code: "ServerBusy", statusCode: 503 })).code).toBe("Unavailable");
  });

  it("GCS (including auth failures the emulator cannot produce)", () => {
    const invalid = gcsError(401, "Invalid Credentials", "authError");
    expect(mapped("gcs", invalid).code).toBe("Unauthenticated");
    expect(mapped("gcs", new Error("invalid_grant: Invalid JWT Signature.")).code).toBe("Unauthenticated");
    const forbidden = gcsError(403, "sa@p does not have storage.objects.get access", "forbidden");
    expect(mapped("gcs", forbidden).code).toBe("AccessDenied");
    expect(mapped("gcs", gcsError(404, "No such object: ckpts/a/b")).code).toBe("NotFound");
    expect(mapped("gcs", gcsError(404, "The specified bucket does not exist.")).code).toBe("BucketNotFound");
    expect(mapped("gcs", gcsError(404, "Not Found"), "list", "").code).toBe("BucketNotFound");
  });

  it("network failures read as Unavailable, naming the endpoint", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    const e = mapped("s3", Object.assign(new Error("fetch failed"), { cause: refused }));
    expect(e.code).toBe("Unavailable");
    expect(e.message).toBe("s3 get ckpts/a/b: the storage endpoint could not be reached — ECONNREFUSED (http://127.0.0.1:9)");
  });

  it("scrubs any secret a backend message might echo", () => {
    for (const [backend, secret] of [
      ["s3", SECRET],
      ["azure", SECRET],
      ["gcs", PEM_LINE],
    ] as const) {
      const e = mapped(backend, new Error(`bad signature for key ${secret} / ${encodeURIComponent(secret)}`));
      expect(e.message).toContain("bad signature for key [redacted] / [redacted]");
    }
  });

  it("never attaches the SDK error (with its request and headers) as cause", () => {
    const e = mapped("azure", new RestError("x", { code: "AuthenticationFailed", statusCode: 403 }));
    expect(e.cause).toBeUndefined();
    expect(Object.keys(JSON.parse(JSON.stringify(e))).sort()).toEqual([
      "backend",
      "backendCode",
      "code",
      "message",
      "name",
      "status",
    ]);
  });
});
