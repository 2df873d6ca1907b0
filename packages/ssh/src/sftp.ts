import { posix } from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { SftpError } from "./errors";
import type { SshEndpoint, UploadFile } from "./types";

const NO_SUCH_FILE = 2;
const READ_CHUNK = 64 * 1024;

interface SftpErr {
  code?: number | string;
  message?: string;
}

function wrap(ep: SshEndpoint, path: string, op: string, e: unknown): SftpError {
  const err = (e ?? {}) as SftpErr;
  const code = typeof err.code === "number" ? err.code : undefined;
  return new SftpError(
    ep.host,
    ep.port,
    path,
    code,
    `SFTP ${op} ${path} on ${ep.host}:${ep.port} failed: ${err.message ?? String(e)}`,
  );
}

function checkPath(p: string): void {
  if (typeof p !== "string" || p === "" || p.includes("\0"))
    throw new TypeError("remote path must be a non-empty string without NUL");
}

function call<T>(fn: (cb: (err: Error | undefined | null, v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, v) => (err ? reject(err) : resolve(v)));
    } catch (e) {
      reject(e);
    }
  });
}

async function statOrNull(sftp: SFTPWrapper, ep: SshEndpoint, p: string): Promise<Stats | null> {
  try {
    return await call<Stats>((cb) => sftp.stat(p, cb));
  } catch (e) {
    if ((e as SftpErr).code === NO_SUCH_FILE) return null;
    throw wrap(ep, p, "stat", e);
  }
}

/** mkdir -p through SFTP requests (never a shell). */
async function mkdirp(sftp: SFTPWrapper, ep: SshEndpoint, dir: string, known: Set<string>): Promise<void> {
  if (dir === "" || dir === "." || dir === "/" || known.has(dir)) return;
  const st = await statOrNull(sftp, ep, dir);
  if (st) {
    if (!st.isDirectory())
      throw new SftpError(ep.host, ep.port, dir, undefined, `${dir} on ${ep.host}:${ep.port} exists and is not a directory`);
    known.add(dir);
    return;
  }
  await mkdirp(sftp, ep, posix.dirname(dir), known);
  try {
    await call<void>((cb) => sftp.mkdir(dir, (err) => cb(err, undefined)));
  } catch (e) {
    // lost a race with another creator: fine if it is a directory now
    const again = await statOrNull(sftp, ep, dir);
    if (!again?.isDirectory()) throw wrap(ep, dir, "mkdir", e);
  }
  known.add(dir);
}

export async function sftpUpload(sftp: SFTPWrapper, ep: SshEndpoint, files: UploadFile[]): Promise<void> {
  for (const f of files) checkPath(f.path);
  const known = new Set<string>();
  for (const f of files) {
    await mkdirp(sftp, ep, posix.dirname(f.path), known);
    const data = typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content;
    try {
      await call<void>((cb) =>
        sftp.writeFile(f.path, data, f.mode !== undefined ? { mode: f.mode } : {}, (err) => cb(err, undefined)),
      );
    } catch (e) {
      throw wrap(ep, f.path, "write", e);
    }
    if (f.mode !== undefined) {
      const mode = f.mode;
      try {
        await call<void>((cb) => sftp.chmod(f.path, mode, (err) => cb(err, undefined)));
      } catch (e) {
        throw wrap(ep, f.path, "chmod", e);
      }
    }
  }
}

export async function sftpDownload(sftp: SFTPWrapper, ep: SshEndpoint, path: string, maxBytes: number): Promise<Buffer> {
  checkPath(path);
  let handle: Buffer;
  try {
    handle = await call<Buffer>((cb) => sftp.open(path, "r", cb));
  } catch (e) {
    throw wrap(ep, path, "open", e);
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        n = await new Promise<number>((resolve, reject) => {
          sftp.read(handle, buf, 0, READ_CHUNK, total, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
        });
      } catch (e) {
        throw wrap(ep, path, "read", e);
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) {
        throw new SftpError(
          ep.host,
          ep.port,
          path,
          undefined,
          `${path} on ${ep.host}:${ep.port} is larger than the ${maxBytes}-byte limit`,
        );
      }
      chunks.push(n === READ_CHUNK ? buf : Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    sftp.close(handle, () => {});
  }
}
