import { StorageError } from "./errors";
import type { ObjectBackend } from "./types";

const MAX_KEY_BYTES = 1024; // S3 and GCS limit; Azure allows more
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function invalid(what: string, why: string): StorageError {
  return new StorageError("InvalidArgument", `invalid ${what}: ${why}`);
}

function checkSegments(value: string, what: string, allowTrailingSlash: boolean): void {
  if (CONTROL.test(value)) throw invalid(what, "contains a control character");
  if (Buffer.byteLength(value, "utf8") > MAX_KEY_BYTES) throw invalid(what, `longer than ${MAX_KEY_BYTES} bytes`);
  if (value.startsWith("/")) throw invalid(what, "must be relative (no leading '/')");
  if (value.includes("\\")) throw invalid(what, "must use '/' as separator, not '\\'");
  const body = allowTrailingSlash && value.endsWith("/") ? value.slice(0, -1) : value;
  if (body === "") return;
  for (const seg of body.split("/")) {
    if (seg === "") throw invalid(what, "contains an empty path segment ('//' or a trailing '/')");
    if (seg === "." || seg === "..") throw invalid(what, "contains a '.' or '..' segment");
  }
}

/** Throws unless `key` names one object: relative, `/`-separated, no `.`/`..`/empty segments. */
export function assertObjectKey(key: string): void {
  if (typeof key !== "string" || key === "") throw invalid("object key", "empty");
  checkSegments(key, "object key", false);
}

/** Throws unless `prefix` is a valid listing prefix (may be empty, may end with `/`). */
export function assertPrefix(prefix: string): void {
  if (typeof prefix !== "string") throw invalid("key prefix", "not a string");
  if (prefix === "") return;
  // A listing prefix may end mid-segment ("ckpt/step-1" lists step-1, step-10, …).
  checkSegments(prefix, "key prefix", true);
}

/** Throws unless `prefix` is a non-empty directory prefix ending with `/`. */
export function assertDirPrefix(prefix: string): void {
  if (typeof prefix !== "string" || prefix === "" || prefix === "/") {
    throw invalid("directory prefix", "empty (refusing to touch the whole bucket)");
  }
  if (!prefix.endsWith("/")) {
    throw invalid("directory prefix", "must end with '/' so that 'a/step-1/' never matches 'a/step-10/'");
  }
  checkSegments(prefix, "directory prefix", true);
}

/** `ckpt/step-10` and `ckpt/step-10/` → `ckpt/step-10/`; `""` stays `""`. */
export function toDirPrefix(prefix: string): string {
  if (prefix === "") return "";
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

/** Joins a directory prefix and a relative `/`-separated path into an object key. */
export function joinKey(prefix: string, relPath: string): string {
  const key = `${toDirPrefix(prefix)}${relPath}`;
  assertObjectKey(key);
  return key;
}

/**
 * Bucket / container name rules (a little looser than each provider's full rule set, but they
 * reject everything that could be mistaken for a path or carry credentials).
 * Returns an error message, or undefined when the name is acceptable.
 */
export function bucketNameProblem(backend: ObjectBackend, name: string): string | undefined {
  const noun = backend === "azure" ? "container name" : "bucket name";
  if (name.length < 3 || name.length > 63) {
    if (!(backend === "gcs" && name.includes(".") && name.length <= 222 && name.length >= 3)) {
      return `${noun} must be 3-63 characters`;
    }
  }
  if (backend === "azure") {
    if (!/^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name)) {
      return `${noun} may only contain lowercase letters, digits and single hyphens, and must start and end with a letter or digit`;
    }
    return undefined;
  }
  const chars = backend === "gcs" ? /^[a-z0-9][a-z0-9._-]*[a-z0-9]$/ : /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/;
  if (!chars.test(name)) {
    return backend === "gcs"
      ? `${noun} may only contain lowercase letters, digits, '-', '_' and '.', and must start and end with a letter or digit`
      : `${noun} may only contain lowercase letters, digits, '-' and '.', and must start and end with a letter or digit`;
  }
  if (name.includes("..")) return `${noun} must not contain '..'`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return `${noun} must not look like an IP address`;
  return undefined;
}
