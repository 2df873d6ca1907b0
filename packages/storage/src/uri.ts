import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import { StorageError } from "./errors";
import { assertPrefix, bucketNameProblem } from "./keys";
import type { NodeLocation, ObjectBackend, ObjectLocation } from "./types";

const SCHEMES: Record<string, ObjectBackend> = { "s3:": "s3", "az:": "azure", "gs:": "gcs" };
const SCHEME_OF: Record<ObjectBackend, string> = { s3: "s3", azure: "az", gcs: "gs" };

function bad(why: string): StorageError {
  return new StorageError("InvalidArgument", `invalid storage URI: ${why}`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function nodePath(path: string): NodeLocation {
  if (CONTROL.test(path)) throw bad("the path contains a control character");
  if (!path.startsWith("/")) throw bad("a node path must be absolute");
  if (path.split("/").some((seg) => seg === "..")) throw bad("a node path must not contain '..'");
  let normal = posix.normalize(path);
  if (normal.length > 1 && normal.endsWith("/")) normal = normal.slice(0, -1);
  return { backend: "node", path: normal };
}

/**
 * Parses a checkpoint location:
 * - `s3://bucket/key`, `az://container/key`, `gs://bucket/key` → an object store location (the
 *   key is taken literally, not percent-decoded, as the AWS/gsutil/azcopy CLIs do; it may be
 *   empty or end with `/` for a directory);
 * - `file:///abs/path` or a plain absolute path → the node's own filesystem (or a shared mount).
 * Throws StorageError(`InvalidArgument`) with a message that does not repeat the URI (a URI with
 * embedded credentials must not end up in a log).
 */
export function parseStorageUri(uri: string): ObjectLocation | NodeLocation {
  if (typeof uri !== "string" || uri.trim() === "") throw bad("empty");
  if (uri !== uri.trim()) throw bad("leading or trailing whitespace");
  if (uri.startsWith("/")) return nodePath(uri);
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(.*)$/s.exec(uri);
  if (!m) throw bad("expected s3://, az://, gs://, file:// or an absolute path");
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === "file:") {
    if (!rest.startsWith("//")) throw bad("file URIs must look like file:///absolute/path");
    const authority = rest.slice(2).split("/", 1)[0];
    if (authority !== "" && authority !== "localhost") throw bad("file URIs must not name a host");
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch {
      throw bad("not a valid file URI");
    }
    return nodePath(path);
  }
  const backend = SCHEMES[scheme];
  if (!backend) throw bad(`unsupported scheme '${scheme}//' (expected s3://, az://, gs://, file:// or an absolute path)`);
  if (!rest.startsWith("//")) throw bad(`expected ${scheme}//bucket/key`);
  const afterSlashes = rest.slice(2);
  const slash = afterSlashes.indexOf("/");
  const bucket = slash < 0 ? afterSlashes : afterSlashes.slice(0, slash);
  const key = slash < 0 ? "" : afterSlashes.slice(slash + 1);
  if (bucket.includes("@") || bucket.includes(":")) throw bad("credentials or ports must not be embedded in a storage URI");
  if (bucket === "") throw bad(`missing ${backend === "azure" ? "container" : "bucket"} name`);
  if (uri.includes("?") || uri.includes("#")) throw bad("query strings and fragments are not supported");
  const problem = bucketNameProblem(backend, bucket);
  if (problem) throw bad(problem);
  try {
    assertPrefix(key);
  } catch (err) {
    throw bad(err instanceof Error ? err.message.replace(/^invalid key prefix: /, "key ") : "invalid key");
  }
  return { backend, bucket, key };
}

/** The inverse of {@link parseStorageUri}. */
export function formatStorageUri(loc: ObjectLocation | NodeLocation): string {
  if (loc.backend === "node") return loc.path;
  return `${SCHEME_OF[loc.backend]}://${loc.bucket}/${loc.key}`;
}

export function isObjectLocation(loc: ObjectLocation | NodeLocation): loc is ObjectLocation {
  return loc.backend !== "node";
}
