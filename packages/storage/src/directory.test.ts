import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { downloadDirectory, downloadTree, uploadDirectory, uploadTree } from "./directory";
import { isStorageError } from "./errors";
import { MemoryObjectStore } from "./memory";
import { mapLimit } from "./streams";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ty-storage-unit-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("directory transfer (memory store)", () => {
  it("round-trips a nested directory byte for byte", async () => {
    const src = join(dir, "src");
    await mkdir(join(src, "shards"), { recursive: true });
    const files: Record<string, Buffer> = {
      "meta.json": Buffer.from('{"step":10}'),
      "shards/0.bin": randomBytes(70_000),
      "shards/1.bin": randomBytes(3),
      "empty.txt": Buffer.alloc(0),
    };
    for (const [p, b] of Object.entries(files)) await writeFile(join(src, p), b);
    await symlink("meta.json", join(src, "latest")); // symlink to a file inside: uploaded as its content

    const store = new MemoryObjectStore();
    const up = await uploadDirectory(store, src, "jobs/j1/step-10");
    expect(up.prefix).toBe("jobs/j1/step-10/");
    expect(up.files.map((f) => f.key)).toEqual([
      "jobs/j1/step-10/empty.txt",
      "jobs/j1/step-10/latest",
      "jobs/j1/step-10/meta.json",
      "jobs/j1/step-10/shards/0.bin",
      "jobs/j1/step-10/shards/1.bin",
    ]);
    expect(up.bytes).toBe(11 + 70_000 + 3 + 11);

    const dst = join(dir, "dst");
    const down = await downloadDirectory(store, "jobs/j1/step-10/", dst);
    expect(down.files).toHaveLength(5);
    for (const [p, b] of Object.entries(files)) expect(sha(await readFile(join(dst, p)))).toBe(sha(b));
    expect((await readFile(join(dst, "latest"))).toString()).toBe('{"step":10}');
  });

  it("refuses symlinks that leave the directory", async () => {
    const src = join(dir, "src");
    await mkdir(src);
    await writeFile(join(dir, "outside"), "secret");
    await symlink(join(dir, "outside"), join(src, "leak"));
    await expect(uploadDirectory(new MemoryObjectStore(), src, "p")).rejects.toThrow(/outside/);
  });

  it("refuses to download keys that would escape the target directory", async () => {
    const store = new MemoryObjectStore();
    store.objects.set("p/../../etc/x", { data: Buffer.from("x"), lastModified: new Date() });
    await expect(downloadDirectory(store, "p", join(dir, "dst"))).rejects.toThrow(/unsafe path/);
  });

  it("downloading a prefix with nothing under it is NotFound", async () => {
    const err = await downloadDirectory(new MemoryObjectStore(), "nothing/here", join(dir, "dst")).catch((e) => e);
    expect(isStorageError(err, "NotFound")).toBe(true);
  });

  it("deletePrefix only takes the directory it names", async () => {
    const store = new MemoryObjectStore();
    for (const k of ["c/step-1/a", "c/step-1/b/c", "c/step-10/a", "c/step-1.txt"])
      await store.putStream(k, Readable.from([Buffer.from(k)]));
    await expect(store.deletePrefix("c/step-1")).rejects.toThrow(/must end with '\/'/);
    await expect(store.deletePrefix("")).rejects.toThrow(/refusing/);
    expect(await store.deletePrefix("c/step-1/")).toBe(2);
    expect((await store.list("c/")).map((o) => o.key)).toEqual(["c/step-1.txt", "c/step-10/a"]);
    await store.delete("c/missing"); // deleting a missing key is fine
  });

  it("prune removes leftovers of an earlier upload to the same prefix", async () => {
    const store = new MemoryObjectStore();
    await store.putStream("p/stale.bin", Readable.from([Buffer.from("old")]));
    const src = join(dir, "src");
    await mkdir(src);
    await writeFile(join(src, "new.bin"), "new");
    await uploadDirectory(store, src, "p", { prune: true });
    expect((await store.list("p/")).map((o) => o.key)).toEqual(["p/new.bin"]);
  });

  it("uploadTree/downloadTree work with any stream source and sink (e.g. SFTP)", async () => {
    const store = new MemoryObjectStore("b", "gcs");
    const data: Record<string, Buffer> = { "a.bin": randomBytes(1000), "d/b.bin": randomBytes(10) };
    await uploadTree(
      store,
      {
        files: async () => Object.entries(data).map(([path, b]) => ({ path, size: b.length })),
        open: async (path) => {
          const s = new PassThrough(); // an old-style producer: writes later
          setTimeout(() => s.end(data[path]), 5);
          return s;
        },
      },
      "x",
    );
    const got: Record<string, Buffer> = {};
    await downloadTree(store, "x/", {
      write: async (path, body) => {
        const chunks: Buffer[] = [];
        for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
        got[path] = Buffer.concat(chunks);
      },
    });
    expect(got).toEqual(data);
  });
});

describe("transfer failures", () => {
  it("a source that cannot open a file fails with a StorageError naming the file", async () => {
    const err = await uploadTree(
      new MemoryObjectStore(),
      { files: async () => [{ path: "a.bin" }], open: async () => Promise.reject(new Error("No such file")) },
      "p",
    ).catch((e) => e);
    expect(isStorageError(err)).toBe(true);
    expect(err.message).toBe("open a.bin: No such file");
  });

  it("mapLimit starts nothing new after a failure and waits for the transfers in flight", async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const err = await mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, i === 1 ? 5 : 30));
      if (i === 1) throw new Error("boom");
      finished.push(i);
      return i;
    }).catch((e) => e);
    expect(err.message).toBe("boom");
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([0]); // 0 was in flight when 1 failed, and finished before the rejection
  });
});

describe("store behaviour shared by every backend", () => {
  it("putStream fails and removes the object when the stream is shorter than the size given", async () => {
    const store = new MemoryObjectStore();
    const err = await store.putStream("k", Readable.from([Buffer.from("abc")]), 10).catch((e) => e);
    expect(isStorageError(err, "Integrity")).toBe(true);
    expect(await store.stat("k")).toBeNull();
  });

  it("a failing source stream fails the upload with a StorageError", async () => {
    const store = new MemoryObjectStore();
    const src = new PassThrough();
    setTimeout(() => src.destroy(new Error("sftp: connection lost")), 5);
    const err = await store.putStream("k", src).catch((e) => e);
    expect(isStorageError(err)).toBe(true);
    expect(err.message).toMatch(/sftp: connection lost/);
  });

  it("getToFile writes atomically and creates parent directories", async () => {
    const store = new MemoryObjectStore();
    await store.putStream("a/b", Readable.from([Buffer.from("hello")]));
    const target = join(dir, "x", "y", "b");
    expect(await store.getToFile("a/b", target)).toEqual({ size: 5 });
    expect((await readFile(target)).toString()).toBe("hello");
    const err = await store.getToFile("a/missing", join(dir, "m")).catch((e) => e);
    expect(isStorageError(err, "NotFound")).toBe(true);
  });

  it("validates options", () => {
    expect(() => new MemoryObjectStore("b", "s3", { partSize: 10 })).toThrow(/partSize/);
    expect(() => new MemoryObjectStore("b", "s3", { concurrency: 0 })).toThrow(/concurrency/);
  });
});
