import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";

/** A pass-through that counts the bytes flowing through it. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Wraps any Node readable (old-style streams included, e.g. some SFTP streams) in a counter.
 * The returned stream is a real `stream.Readable`, which every SDK accepts. Errors of the
 * source are forwarded to the counter, so the upload consuming it fails instead of hanging.
 */
export function counted(body: NodeJS.ReadableStream): ByteCounter {
  const counter = new ByteCounter();
  const src = body instanceof Readable ? body : new Readable({ read() {} }).wrap(body);
  src.on("error", (err) => counter.destroy(err));
  src.pipe(counter);
  return counter;
}

/**
 * Writes a readable to `localPath` atomically: a temp file in the same directory, renamed over
 * the target once complete (a reader never sees a half-written checkpoint file).
 */
export async function writeFileAtomic(body: NodeJS.ReadableStream, localPath: string): Promise<number> {
  await mkdir(dirname(localPath), { recursive: true });
  const tmp = join(dirname(localPath), `.${basename(localPath)}.${randomBytes(6).toString("hex")}.part`);
  const counter = new ByteCounter();
  try {
    await pipeline(body, counter, createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, localPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return counter.bytes;
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. On the first failure no new item is
 * started, the ones in flight are allowed to finish, and then the first error is thrown (so a
 * caller never cleans up while transfers are still running).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let firstError: { err: unknown } | undefined;
  const worker = async () => {
    while (!firstError && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        firstError ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (firstError) throw firstError.err;
  return results;
}
