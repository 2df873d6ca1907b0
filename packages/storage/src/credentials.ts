import { createPrivateKey } from "node:crypto";
import { z } from "zod";
import { StorageError, scrubSecrets } from "./errors";
import { bucketNameProblem } from "./keys";
import type { ObjectBackend } from "./types";

/*
 * Storage credentials. Zod 4 issues never carry the input value unless asked to
 * (`reportInput`), and every custom message below names fields, never values — so a
 * validation error about a secret field cannot echo the secret.
 */

const REDACTED = "[redacted]";

function str(field: string, max: number) {
  return z
    .string({ error: (iss) => (iss.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .min(1, `${field} must not be empty`)
    .max(max, `${field} must be at most ${max} characters`);
}

function bucket(backend: ObjectBackend, field: string) {
  return str(field, 222).superRefine((name, ctx) => {
    const problem = bucketNameProblem(backend, name);
    if (problem) ctx.addIssue({ code: "custom", message: `${field}: ${problem}` });
  });
}

/** An http(s) endpoint URL without credentials, query or fragment. */
function endpoint(field: string) {
  return str(field, 2048).superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: `${field} must be an absolute http(s) URL` });
      return;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: `${field} must use http or https` });
    }
    if (url.username || url.password) {
      ctx.addIssue({ code: "custom", message: `${field} must not contain credentials (user:password@)` });
    }
    if (url.search || url.hash) ctx.addIssue({ code: "custom", message: `${field} must not have a query string or fragment` });
  });
}

const s3Schema = z.strictObject({
  backend: z.literal("s3"),
  bucket: bucket("s3", "bucket"),
  region: str("region", 64)
    .regex(/^[a-z0-9-]+$/, "region must look like us-east-1 (lowercase letters, digits, '-')")
    .optional(),
  /** Custom endpoint for S3-compatible servers (MinIO, Ceph, R2, …). Unset = AWS. */
  endpoint: endpoint("endpoint").optional(),
  /** Path-style URLs (`endpoint/bucket/key`). Defaults to true when `endpoint` is set, else false. */
  forcePathStyle: z.boolean({ error: "forcePathStyle must be true or false" }).optional(),
  accessKeyId: str("accessKeyId", 256),
  secretAccessKey: str("secretAccessKey", 1024),
  /** For temporary (STS) credentials. */
  sessionToken: str("sessionToken", 8192).optional(),
});

const CONNECTION_STRING_KEYS = new Set([
  "DefaultEndpointsProtocol",
  "AccountName",
  "AccountKey",
  "BlobEndpoint",
  "QueueEndpoint",
  "TableEndpoint",
  "FileEndpoint",
  "EndpointSuffix",
  "SharedAccessSignature",
  "UseDevelopmentStorage",
  "DevelopmentStorageProxyUri",
]);

/** Splits `K=V;K=V` (values may contain `=`, as base64 keys and SAS tokens do). */
export function parseConnectionString(cs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of cs.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

const azureSchema = z
  .strictObject({
    backend: z.literal("azure"),
    container: bucket("azure", "container"),
    /** A storage account connection string (Azure portal → Access keys), or Azurite's. */
    connectionString: str("connectionString", 4096).optional(),
    /** Alternatively: account name + shared key (+ endpoint for sovereign clouds / Azurite). */
    accountName: str("accountName", 64)
      .regex(/^[a-z0-9]{3,24}$/, "accountName must be 3-24 lowercase letters or digits")
      .optional(),
    accountKey: str("accountKey", 1024).regex(BASE64, "accountKey must be base64 (as shown in the portal)").optional(),
    /** Blob service URL; default `https://<accountName>.blob.core.windows.net`. */
    endpoint: endpoint("endpoint").optional(),
  })
  .superRefine((v, ctx) => {
    const hasCs = v.connectionString !== undefined;
    const hasKey = v.accountName !== undefined || v.accountKey !== undefined;
    if (hasCs && (hasKey || v.endpoint !== undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "give either connectionString, or accountName + accountKey (+ endpoint), not both",
      });
      return;
    }
    if (!hasCs && !hasKey) {
      ctx.addIssue({ code: "custom", message: "azure credentials need connectionString, or accountName + accountKey" });
      return;
    }
    if (!hasCs) {
      if (v.accountName === undefined)
        ctx.addIssue({ code: "custom", path: ["accountName"], message: "accountName is required with accountKey" });
      if (v.accountKey === undefined)
        ctx.addIssue({ code: "custom", path: ["accountKey"], message: "accountKey is required with accountName" });
      return;
    }
    const parts = parseConnectionString(v.connectionString ?? "");
    const unknown = [...parts.keys()].filter((k) => !CONNECTION_STRING_KEYS.has(k));
    const path = ["connectionString"];
    if (parts.size === 0) {
      ctx.addIssue({ code: "custom", path, message: "connectionString is not a connection string (expected Key=Value;… pairs)" });
    } else if (unknown.length > 0) {
      // Key names only; a pasted secret without "=" is not a key and is not listed.
      ctx.addIssue({ code: "custom", path, message: `connectionString has unknown settings: ${unknown.join(", ")}` });
    } else if (parts.get("UseDevelopmentStorage")?.toLowerCase() === "true") {
      // Azurite on its default ports; fine.
    } else if (parts.has("SharedAccessSignature")) {
      if (!parts.has("BlobEndpoint"))
        ctx.addIssue({ code: "custom", path, message: "connectionString with SharedAccessSignature needs BlobEndpoint" });
    } else {
      if (!parts.get("AccountName")) ctx.addIssue({ code: "custom", path, message: "connectionString has no AccountName" });
      const key = parts.get("AccountKey");
      if (!key) ctx.addIssue({ code: "custom", path, message: "connectionString has no AccountKey (or SharedAccessSignature)" });
      else if (!BASE64.test(key)) ctx.addIssue({ code: "custom", path, message: "connectionString AccountKey is not base64" });
    }
    const blobEndpoint = parts.get("BlobEndpoint");
    if (blobEndpoint !== undefined && !/^https?:\/\/[^\s@]+$/.test(blobEndpoint)) {
      ctx.addIssue({ code: "custom", path, message: "connectionString BlobEndpoint must be an http(s) URL without credentials" });
    }
  });

function isPemPrivateKey(pem: string): boolean {
  if (!/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/.test(pem)) return false;
  try {
    createPrivateKey(pem.replace(/\\n/g, "\n"));
    return true;
  } catch {
    return false;
  }
}

const gcsServiceAccount = z.object(
  {
    // Unknown keys (type, project_id, private_key_id, token_uri, …) are dropped, so a whole
    // service-account key file can be pasted.
    client_email: str("credentials.client_email", 320).regex(
      /^[^\s@]+@[^\s@]+$/,
      "credentials.client_email must be the service account's email address",
    ),
    private_key: str("credentials.private_key", 16384).refine(
      isPemPrivateKey,
      "credentials.private_key is not a PEM private key (-----BEGIN PRIVATE KEY----- …)",
    ),
  },
  { error: "credentials must be a service-account key object with client_email and private_key" },
);

const gcsSchema = z.strictObject({
  backend: z.literal("gcs"),
  bucket: bucket("gcs", "bucket"),
  projectId: str("projectId", 64).optional(),
  /**
   * Custom API endpoint (an emulator, or a private Google endpoint). Requests to it are
   * authenticated only when `credentials` are given.
   */
  apiEndpoint: endpoint("apiEndpoint").optional(),
  /** Service-account key. Unset: Application Default Credentials (or none for an emulator). */
  credentials: gcsServiceAccount.optional(),
});

export const storageCredentialsSchema = z.discriminatedUnion("backend", [s3Schema, azureSchema, gcsSchema], {
  error: (iss) =>
    iss.input === null || typeof iss.input !== "object" || Array.isArray(iss.input)
      ? "storage credentials must be an object"
      : "backend must be one of: s3, azure, gcs",
});

export type S3Credentials = z.infer<typeof s3Schema>;
export type AzureCredentials = z.infer<typeof azureSchema>;
export type GcsCredentials = z.infer<typeof gcsSchema>;
export type StorageCredentials = z.infer<typeof storageCredentialsSchema>;

/** Field names that hold secrets, anywhere in a credentials object. */
export const SECRET_FIELDS = ["secretAccessKey", "sessionToken", "connectionString", "accountKey", "private_key"] as const;

/** pino `redact.paths` covering storage credentials at the top level or one level down. */
export const STORAGE_REDACT_PATHS: string[] = [
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
  "credentials.private_key",
  "*.credentials.private_key",
];

/** Every secret string in a credentials-shaped value (whether or not it is valid). */
export function secretsOf(input: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown, depth: number) => {
    if (!v || typeof v !== "object" || depth > 3) return;
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if ((SECRET_FIELDS as readonly string[]).includes(k) && typeof val === "string" && val !== "") {
        out.push(val);
        if (k === "connectionString") {
          const parts = parseConnectionString(val);
          for (const part of ["AccountKey", "SharedAccessSignature"]) {
            const s = parts.get(part);
            if (s) out.push(s);
          }
        }
        if (k === "private_key") {
          // The base64 body lines of a PEM key, in case a library prints a fragment.
          for (const line of val.replace(/\\n/g, "\n").split("\n"))
            if (line.length >= 16 && !line.startsWith("-----")) out.push(line);
        }
      } else if (typeof val === "object") {
        visit(val, depth + 1);
      }
    }
  };
  visit(input, 0);
  return out;
}

/** A copy safe to log or return from an API: every secret field replaced by "[redacted]". */
export function redactCredentials<T>(creds: T): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (!v || typeof v !== "object" || depth > 3) return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      out[k] = (SECRET_FIELDS as readonly string[]).includes(k) && val !== undefined ? REDACTED : walk(val, depth + 1);
    }
    return out;
  };
  return walk(creds, 0) as T;
}

/**
 * Validates credentials; throws StorageError(`InvalidArgument`) listing every problem by field.
 * The message never contains a value from the input.
 */
export function parseStorageCredentials(input: unknown): StorageCredentials {
  const r = storageCredentialsSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((iss) => {
    const path = iss.path.join(".");
    return path && !iss.message.startsWith(path) && !iss.message.includes(`${path} `) ? `${path}: ${iss.message}` : iss.message;
  });
  const message = scrubSecrets(`invalid storage credentials: ${problems.join("; ")}`, secretsOf(input));
  throw new StorageError("InvalidArgument", message);
}
