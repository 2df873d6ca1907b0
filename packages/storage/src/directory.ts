import { createReadStream } from "node:fs";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { StorageError } from "./errors";
import { assertObjectKey, joinKey, toDirPrefix } from "./keys";
import { mapLimit, writeFileAtomic } from "./streams";
import type { ObjectStore } from "./types";

/** A file of a directory tree: `path` is relative and `/`-separated. */
export interface TreeFile {
  path: string;
  size?: number;
}

/**
 * Where a directory tree is read from: the local filesystem ({@link localDirectorySource}), or
 * anything else that can list files and open a stream per file (an SFTP session on a node).
 */
export interface TreeSource {
  files(): Promise<TreeFile[]>;
  open(path: string): Promise<NodeJS.ReadableStream>;
}

/** Where a directory tree is written to. `write` must consume `body` fully or reject. */
export interface TreeSink {
  write(path: string, body: NodeJS.ReadableStream, size: number): Promise<void>;
}

export interface TransferredFile {
  path: string;
  key: string;
  size: number;
}

export interface TransferResult {
  /** Normalized key prefix (always ends with `/`). */
  prefix: string;
  files: TransferredFile[];
  bytes: number;
}

export interface TransferOptions {
  /** Files transferred in parallel. Default 4. */
  concurrency?: number;
  /**
   * Upload only: afterwards, delete objects under the prefix that were not part of this upload
   * (leftovers of an earlier, interrupted or different upload to the same prefix). Default false.
   */
  prune?: boolean;
}

/** Runs a source/sink call; a failure that is not already a StorageError becomes one. */
async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StorageError) throw err;
    throw new StorageError("Unknown", `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function dirPrefixOf(keyPrefix: string): string {
  const prefix = toDirPrefix(keyPrefix);
  if (prefix === "")
    throw new StorageError("InvalidArgument", "invalid directory prefix: empty (refusing to use the bucket root)");
  assertObjectKey(prefix.slice(0, -1));
  return prefix;
}

/**
 * Uploads every file of `source` under `keyPrefix` (`ckpt/step-10` and `ckpt/step-10/` are the
 * same: files land at `ckpt/step-10/<relative path>`). Empty directories are not represented.
 */
export async function uploadTree(
  store: ObjectStore,
  source: TreeSource,
  keyPrefix: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const prefix = dirPrefixOf(keyPrefix);
  const files = await guard("list source files", () => source.files());
  const planned = files.map((f) => ({ ...f, key: joinKey(prefix, f.path) }));
  const done = await mapLimit(planned, options.concurrency ?? 4, async (f) => {
    const body = await guard(`open ${f.path}`, () => source.open(f.path));
    const { size } = await store.putStream(f.key, body, f.size);
    return { path: f.path, key: f.key, size };
  });
  if (options.prune) {
    const keep = new Set(done.map((f) => f.key));
    const stale = (await store.list(prefix)).filter((o) => !keep.has(o.key));
    await mapLimit(stale, 8, (o) => store.delete(o.key));
  }
  return { prefix, files: done, bytes: done.reduce((n, f) => n + f.size, 0) };
}

/**
 * Downloads every object under `keyPrefix` into `sink`, each at its path relative to the prefix.
 * Keys that would escape the target (`..` segments, absolute paths) are refused, and "directory
 * marker" objects (keys ending with `/`) are skipped. Throws `NotFound` if nothing is there.
 */
export async function downloadTree(
  store: ObjectStore,
  keyPrefix: string,
  sink: TreeSink,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const prefix = dirPrefixOf(keyPrefix);
  const objects = (await store.list(prefix)).filter((o) => !o.key.endsWith("/"));
  if (objects.length === 0) {
    throw new StorageError("NotFound", `${store.backend} ${store.bucket}/${prefix}: no objects under this prefix`, store.backend);
  }
  const planned = objects.map((o) => {
    const path = o.key.slice(prefix.length);
    try {
      assertObjectKey(path);
    } catch {
      throw new StorageError(
        "InvalidArgument",
        `${store.backend} ${store.bucket}: refusing to download key with an unsafe path: ${JSON.stringify(o.key)}`,
        store.backend,
      );
    }
    return { path, key: o.key, size: o.size };
  });
  const done = await mapLimit(planned, options.concurrency ?? 4, async (f) => {
    const body = await store.getStream(f.key);
    await guard(`write ${f.path}`, () => sink.write(f.path, body, f.size));
    return f;
  });
  return { prefix, files: done, bytes: done.reduce((n, f) => n + f.size, 0) };
}

/**
 * The regular files under `root`, recursively. A symlink is followed only when it points to a
 * regular file inside `root` (its content is uploaded); any other symlink is an error, so a
 * checkpoint directory can never leak a file from elsewhere on the machine.
 */
export function localDirectorySource(root: string): TreeSource {
  const base = resolve(root);
  return {
    async files() {
      let realRoot: string;
      try {
        realRoot = await realpath(base);
        if (!(await stat(realRoot)).isDirectory()) throw new Error("not a directory");
      } catch (err) {
        throw new StorageError("InvalidArgument", `cannot read directory ${base}: ${(err as Error).message}`);
      }
      const out: TreeFile[] = [];
      const walk = async (dir: string): Promise<void> => {
        const entries = await readdir(dir, { withFileTypes: true });
        for (const e of entries) {
          const abs = join(dir, e.name);
          const rel = relative(base, abs).split(sep).join("/");
          if (e.isDirectory()) {
            await walk(abs);
          } else if (e.isFile()) {
            out.push({ path: rel, size: (await lstat(abs)).size });
          } else if (e.isSymbolicLink()) {
            let target: string;
            try {
              target = await realpath(abs);
            } catch {
              throw new StorageError("InvalidArgument", `${abs}: dangling symlink`);
            }
            const st = await stat(target);
            if (!st.isFile() || !(target === realRoot || target.startsWith(realRoot + sep))) {
              throw new StorageError(
                "InvalidArgument",
                `${abs}: symlink to a directory or to a file outside ${base} is not uploaded`,
              );
            }
            out.push({ path: rel, size: st.size });
          }
          // sockets, FIFOs, devices: skipped
        }
      };
      await walk(base);
      return out.sort((a, b) => (a.path < b.path ? -1 : 1));
    },
    async open(path) {
      return createReadStream(join(base, ...path.split("/")));
    },
  };
}

/** Writes files under `root` (created if needed); each file is written atomically. */
export function localDirectorySink(root: string): TreeSink {
  const base = resolve(root);
  return {
    async write(path, body, size) {
      const dest = resolve(base, ...path.split("/"));
      if (!dest.startsWith(base + sep)) throw new StorageError("InvalidArgument", `refusing to write outside ${base}: ${path}`);
      const written = await writeFileAtomic(body, dest);
      if (written !== size) {
        throw new StorageError("Integrity", `${dest}: downloaded ${written} bytes, the store listed ${size}`);
      }
    },
  };
}

/** Uploads a local directory: see {@link uploadTree}. */
export function uploadDirectory(
  store: ObjectStore,
  localDir: string,
  keyPrefix: string,
  options?: TransferOptions,
): Promise<TransferResult> {
  return uploadTree(store, localDirectorySource(localDir), keyPrefix, options);
}

/** Restores a directory uploaded with {@link uploadDirectory} into `localDir`: see {@link downloadTree}. */
export function downloadDirectory(
  store: ObjectStore,
  keyPrefix: string,
  localDir: string,
  options?: TransferOptions,
): Promise<TransferResult> {
  return downloadTree(store, keyPrefix, localDirectorySink(localDir), options);
}
