import { describe, expect, it } from "vitest";
import { isStorageError } from "./errors";
import { assertDirPrefix, assertObjectKey, assertPrefix, joinKey, toDirPrefix } from "./keys";
import { formatStorageUri, parseStorageUri } from "./uri";

function parseError(uri: string): string {
  try {
    parseStorageUri(uri);
  } catch (err) {
    expect(isStorageError(err, "InvalidArgument")).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`expected ${uri} to be rejected`);
}

describe("parseStorageUri", () => {
  it("parses object store URIs", () => {
    expect(parseStorageUri("s3://my-bucket/jobs/j1/step-10/")).toEqual({
      backend: "s3",
      bucket: "my-bucket",
      key: "jobs/j1/step-10/",
    });
    expect(parseStorageUri("az://ckpts/a/b.pt")).toEqual({ backend: "azure", bucket: "ckpts", key: "a/b.pt" });
    expect(parseStorageUri("gs://my_bucket.example/x")).toEqual({ backend: "gcs", bucket: "my_bucket.example", key: "x" });
    expect(parseStorageUri("S3://bucket")).toEqual({ backend: "s3", bucket: "bucket", key: "" });
    expect(parseStorageUri("gs://bucket/")).toEqual({ backend: "gcs", bucket: "bucket", key: "" });
  });

  it("takes keys literally (no percent-decoding), like the provider CLIs", () => {
    expect(parseStorageUri("s3://bucket/a%20b/c d")).toEqual({ backend: "s3", bucket: "bucket", key: "a%20b/c d" });
  });

  it("parses node paths and file URIs", () => {
    expect(parseStorageUri("/data/ckpt/step-10")).toEqual({ backend: "node", path: "/data/ckpt/step-10" });
    expect(parseStorageUri("/data//ckpt/./x/")).toEqual({ backend: "node", path: "/data/ckpt/x" });
    expect(parseStorageUri("file:///data/ckpt")).toEqual({ backend: "node", path: "/data/ckpt" });
    expect(parseStorageUri("file://localhost/data/a%20b")).toEqual({ backend: "node", path: "/data/a b" });
    expect(parseStorageUri("/")).toEqual({ backend: "node", path: "/" });
  });

  it("rejects what it cannot place, with a message saying why", () => {
    expect(parseError("")).toMatch(/empty/);
    expect(parseError("relative/path")).toMatch(/expected s3:\/\/, az:\/\/, gs:\/\/, file:\/\/ or an absolute path/);
    expect(parseError("http://bucket/key")).toMatch(/unsupported scheme 'http:\/\/'/);
    expect(parseError("s3:bucket/key")).toMatch(/expected s3:\/\/bucket\/key/);
    expect(parseError("s3:///key")).toMatch(/missing bucket name/);
    expect(parseError("az:///key")).toMatch(/missing container name/);
    expect(parseError("s3://Bad_Bucket/key")).toMatch(/bucket name may only contain/);
    expect(parseError("az://a--b/key")).toMatch(/container name/);
    expect(parseError("s3://ab/key")).toMatch(/3-63 characters/);
    expect(parseError("s3://bucket/a/../b")).toMatch(/'\.' or '\.\.' segment/);
    expect(parseError("s3://bucket/a//b")).toMatch(/empty path segment/);
    expect(parseError("s3://bucket/a?versionId=1")).toMatch(/query/);
    expect(parseError("/data/../etc/passwd")).toMatch(/'\.\.'/);
    expect(parseError("file://otherhost/data")).toMatch(/must not name a host/);
    expect(parseError(" /data")).toMatch(/whitespace/);
    expect(parseError("/data/a\nb")).toMatch(/control character/);
  });

  it("never repeats credentials embedded in a URI", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const msg = parseError(`s3://AKIAEXAMPLE:${secret}@bucket/key`);
    expect(msg).toMatch(/credentials or ports must not be embedded/);
    expect(msg).not.toContain(secret);
    expect(msg).not.toContain("AKIAEXAMPLE");
  });

  it("formats what it parses", () => {
    for (const uri of ["s3://bucket/a/b", "az://container/x/", "gs://bucket/", "/data/ckpt"]) {
      expect(formatStorageUri(parseStorageUri(uri))).toBe(uri);
    }
  });
});

describe("keys", () => {
  it("accepts ordinary object keys and rejects unsafe ones", () => {
    expect(() => assertObjectKey("jobs/j1/a1/step-10/model.pt")).not.toThrow();
    for (const bad of ["", "/abs", "a//b", "a/./b", "a/../b", "..", "a/", "a\\b", "a\u0000b", "x".repeat(1025)]) {
      expect(() => assertObjectKey(bad), JSON.stringify(bad)).toThrow(/invalid object key/);
    }
  });

  it("lets a listing prefix be empty, partial or a directory", () => {
    for (const ok of ["", "ckpt/step-1", "ckpt/", "ckpt/step-1/"]) expect(() => assertPrefix(ok)).not.toThrow();
    expect(() => assertPrefix("/ckpt")).toThrow();
  });

  it("requires a non-empty directory prefix ending with / for deletion", () => {
    expect(() => assertDirPrefix("ckpt/step-1/")).not.toThrow();
    expect(() => assertDirPrefix("")).toThrow(/refusing to touch the whole bucket/);
    expect(() => assertDirPrefix("/")).toThrow(/refusing/);
    expect(() => assertDirPrefix("ckpt/step-1")).toThrow(/must end with '\/'/);
  });

  it("joins prefixes and relative paths", () => {
    expect(toDirPrefix("a/b")).toBe("a/b/");
    expect(toDirPrefix("a/b/")).toBe("a/b/");
    expect(joinKey("a/b", "c/d.bin")).toBe("a/b/c/d.bin");
    expect(() => joinKey("a", "../x")).toThrow();
  });
});
