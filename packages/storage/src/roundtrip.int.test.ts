/**
 * Round trips of every object-store backend against a real local server speaking its protocol
 * (MinIO for S3, Azurite for Azure Blob, fake-gcs-server for GCS), started by
 * scripts/infra/emulators.sh. Each backend gets a fresh bucket, removed afterwards.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MiB } from "./base";
import type { StorageCredentials } from "./credentials";
import { downloadDirectory, uploadDirectory } from "./directory";
import { isStorageError, type StorageError } from "./errors";
import type { S3ObjectStore } from "./s3";
import { type AdminObjectStore, createObjectStore } from "./store";
import { EMULATORS_FILE, type Emulators, emulatorCredentials, loadEmulators, uniqueBucketName } from "./testing";
import type { ObjectBackend } from "./types";

// Never let google-auth-library probe the GCE metadata server from a test machine.
process.env.METADATA_SERVER_DETECTION = "none";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const PART = 5 * MiB; // the S3 minimum; 2 parts for the 5 MiB + 123 KiB file below
const BIG = 5 * MiB + 123 * 1024;

let emulators: Emulators | null = loadEmulators();
// On CI missing emulators fail the file instead of skipping it.
if (!emulators && process.env.CI === "true") {
  throw new Error("CI=true but the object-store emulators are not installed (scripts/infra/emulators.sh)");
}
if (emulators && process.env.TRAINYARD_SKIP_INFRA !== "1") {
  // Idempotent and fast when the servers already run (restarts any that died).
  execFileSync("bash", [join(REPO_ROOT, "scripts/infra/emulators.sh")], { stdio: "inherit" });
  emulators = loadEmulators();
}
if (!emulators) {
  console.warn(`[storage] ${EMULATORS_FILE} is missing: run scripts/infra/emulators.sh — object-store round trips SKIPPED`);
}

const sha256 = async (path: string) => {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
};

async function treeHashes(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out[relative(root, abs)] = await sha256(abs);
  }
  return out;
}

async function expectStorageError(p: Promise<unknown>, code: StorageError["code"]): Promise<StorageError> {
  const err = await p.then(
    () => {
      throw new Error(`expected a StorageError ${code}`);
    },
    (e: unknown) => e,
  );
  if (!isStorageError(err)) throw err;
  expect(err.code, err.message).toBe(code);
  return err;
}

/** An HTTP proxy to `target` that records "METHOD path" and rewrites upload-session Locations. */
async function recordingProxy(target: string): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const upstream = new URL(target);
  let url = "";
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const headers = { ...up.headers };
        if (typeof headers.location === "string") headers.location = headers.location.replace(upstream.origin, url);
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    out.on("error", (err) => res.destroy(err));
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise((r) => server.close(() => r())) };
}

const BACKENDS: ObjectBackend[] = ["s3", "azure", "gcs"];

describe.skipIf(!emulators).each(BACKENDS)("%s object store against its local emulator", (backend) => {
  const emu = emulators as Emulators;
  let creds: StorageCredentials;
  let store: AdminObjectStore;
  let work: string;
  let src: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `ty-storage-${backend}-`));
    src = join(work, "src");
    await mkdir(join(src, "shards", "deep"), { recursive: true });
    await writeFile(join(src, "model.bin"), randomBytes(BIG));
    await writeFile(join(src, "meta.json"), JSON.stringify({ step: 120, loss: 0.42 }));
    await writeFile(join(src, "shards", "optim-0.bin"), randomBytes(300_000));
    await writeFile(join(src, "shards", "deep", "rng state ✓.pt"), randomBytes(777));
    await writeFile(join(src, "empty"), Buffer.alloc(0));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  // Every test gets its own bucket, removed (with everything in it) afterwards.
  beforeEach(async () => {
    creds = emulatorCredentials(emu, backend, uniqueBucketName(`ty-${backend}`));
    store = createObjectStore(creds, { partSize: PART });
    await store.createBucket();
  });

  afterEach(async () => {
    await store.destroyBucket();
    await expectStorageError(store.check(), "BucketNotFound");
    store.close();
  });

  it("uploads a checkpoint directory, lists, stats, restores byte for byte, deletes the prefix", async () => {
    const prefix = "jobs/j1/a1/step-120";
    const up = await uploadDirectory(store, src, prefix);
    expect(up.prefix).toBe(`${prefix}/`);
    expect(up.files).toHaveLength(5);

    const listed = await store.list(`${prefix}/`);
    expect(listed.map((o) => [o.key, o.size])).toEqual([
      [`${prefix}/empty`, 0],
      [`${prefix}/meta.json`, 24],
      [`${prefix}/model.bin`, BIG],
      [`${prefix}/shards/deep/rng state ✓.pt`, 777],
      [`${prefix}/shards/optim-0.bin`, 300_000],
    ]);
    for (const o of listed) expect(o.lastModified).toBeInstanceOf(Date);
    expect(await store.stat(`${prefix}/model.bin`)).toMatchObject({ size: BIG });
    expect(await store.stat(`${prefix}/nope`)).toBeNull();

    const restored = join(work, "restored");
    const down = await downloadDirectory(store, prefix, restored);
    expect(down.bytes).toBe(up.bytes);
    expect(await treeHashes(restored)).toEqual(await treeHashes(src));

    const one = join(work, "one", "model.bin");
    expect(await store.getToFile(`${prefix}/model.bin`, one)).toEqual({ size: BIG });
    expect(await sha256(one)).toBe(await sha256(join(src, "model.bin")));

    // A sibling whose name extends the prefix must survive deletePrefix.
    await store.putFile(join(src, "meta.json"), `${prefix}0/meta.json`);
    expect(await store.deletePrefix(`${prefix}/`)).toBe(5);
    expect(await store.list(`${prefix}/`)).toEqual([]);
    expect((await store.list(prefix)).map((o) => o.key)).toEqual([`${prefix}0/meta.json`]);
    await store.delete(`${prefix}/model.bin`); // already gone: fine
    await store.delete("never/existed");
    expect(await store.deletePrefix("never/existed/")).toBe(0);
  });

  it("sends large objects in parts (multipart / blocks / resumable chunks)", async () => {
    const key = "multipart/model.bin";
    await store.putFile(join(src, "model.bin"), key);
    if (backend === "s3") {
      const s3 = new S3Client({
        region: emu.s3.region,
        endpoint: emu.s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: emu.s3.accessKeyId, secretAccessKey: emu.s3.secretAccessKey },
      });
      const head = await s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
      expect(head.ETag).toMatch(/-2"$/); // a multipart ETag says how many parts
      s3.destroy();
    } else if (backend === "azure") {
      const blob = BlobServiceClient.fromConnectionString(emu.azure.connectionString)
        .getContainerClient(store.bucket)
        .getBlockBlobClient(key);
      const list = await blob.getBlockList("committed");
      expect(list.committedBlocks?.map((b) => b.size)).toEqual([PART, BIG - PART]);
    } else {
      // Count the resumable-upload requests through a recording proxy in front of the emulator.
      const proxy = await recordingProxy(emu.gcs.apiEndpoint);
      try {
        const viaProxy = createObjectStore({ ...creds, apiEndpoint: proxy.url } as StorageCredentials, { partSize: PART });
        await viaProxy.putFile(join(src, "model.bin"), key);
        const uploads = proxy.requests.filter((r) => r.startsWith("POST /upload/") || r.startsWith("PUT /upload/"));
        expect(uploads).toEqual([
          expect.stringMatching(/^POST .*uploadType=resumable/),
          expect.stringMatching(/^PUT /),
          expect.stringMatching(/^PUT /),
        ]);
      } finally {
        await proxy.close();
      }
    }
    expect(await store.stat(key)).toMatchObject({ size: BIG });
    const back = join(work, "mp.bin");
    await store.getToFile(key, back);
    expect(await sha256(back)).toBe(await sha256(join(src, "model.bin")));
  });

  it("streams an upload of unknown length and a download", async () => {
    const body = new PassThrough();
    const chunks = Array.from({ length: 13 }, () => randomBytes(512 * 1024)); // 6.5 MiB, no size given
    const expected = createHash("sha256");
    for (const c of chunks) expected.update(c);
    (async () => {
      for (const c of chunks) {
        if (!body.write(c)) await new Promise((r) => body.once("drain", r));
      }
      body.end();
    })();
    expect(await store.putStream("stream/blob.bin", body)).toEqual({ size: 13 * 512 * 1024 });

    const got = createHash("sha256");
    for await (const c of await store.getStream("stream/blob.bin")) got.update(c as Buffer);
    expect(got.digest("hex")).toBe(expected.digest("hex"));
  });

  it("a failed upload leaves no object (and, on S3, no unfinished multipart upload)", async () => {
    const body = new PassThrough();
    body.write(randomBytes(6 * MiB));
    setTimeout(() => body.destroy(new Error("sftp: connection reset by node")), 200);
    const err = await expectStorageError(store.putStream("broken/blob.bin", body), "Unknown");
    expect(err.message).toMatch(/connection reset by node/);
    expect(await store.stat("broken/blob.bin")).toBeNull();
    if (backend === "s3") expect(await (store as unknown as S3ObjectStore).pendingMultipartUploads()).toBe(0);
  });

  it("reports a missing key and a missing bucket clearly", async () => {
    const err = await expectStorageError(store.getStream("no/such/key"), "NotFound");
    expect(err.message).toContain(`${store.bucket}/no/such/key`);
    await expectStorageError(store.getToFile("no/such/key", join(work, "x")), "NotFound");

    const other = createObjectStore(emulatorCredentials(emu, backend, uniqueBucketName("ty-missing")));
    const e2 = await expectStorageError(other.check(), "BucketNotFound");
    expect(e2.message).toMatch(/does not exist/);
    await expectStorageError(other.list(""), "BucketNotFound");
  });

  it("rejects wrong credentials with a clear error that does not echo the secret", async (ctx) => {
    let bad: StorageCredentials;
    let secret: string;
    if (creds.backend === "s3") {
      secret = `wrong-${randomBytes(12).toString("hex")}`;
      bad = { ...creds, secretAccessKey: secret };
    } else if (creds.backend === "azure") {
      secret = randomBytes(64).toString("base64");
      bad = {
        backend: "azure",
        container: creds.container,
        connectionString: (creds.connectionString ?? "").replace(emu.azure.accountKey, secret),
      };
    } else {
      // fake-gcs-server accepts any (or no) credentials, and real Google tokens would need the
      // network: GCS auth failures are covered by the unit tests of the error mapping instead.
      ctx.skip();
      return;
    }
    const wrong = createObjectStore(bad, { retries: 0 });
    const attempts: Array<() => Promise<unknown>> = [
      () => wrong.check(),
      () => wrong.putFile(join(src, "meta.json"), "x/meta.json"),
      () => wrong.stat("x/meta.json"),
      () => wrong.getStream("x/meta.json"),
    ];
    for (const attempt of attempts) {
      const err = await attempt().then(
        () => {
          throw new Error("expected the wrong credentials to be refused");
        },
        (e: unknown) => e as StorageError,
      );
      expect(isStorageError(err), String(err)).toBe(true);
      // A HEAD (stat) response has no body, so S3 can only say 403 there.
      expect(["Unauthenticated", "AccessDenied"]).toContain(err.code);
      expect(err.message).toMatch(/credentials/);
      const everything = `${err.message}\n${JSON.stringify(err)}\n${err.stack}`;
      expect(everything).not.toContain(secret);
    }
    const first = (await wrong.check().catch((e: unknown) => e)) as StorageError;
    expect(first.code).toBe("Unauthenticated");
    expect(first.message).toMatch(/credentials were rejected/);
  });

  it("says Unavailable when the endpoint does not answer", async () => {
    let down: StorageCredentials;
    if (creds.backend === "s3") down = { ...creds, endpoint: "http://127.0.0.1:1" };
    else if (creds.backend === "azure")
      down = {
        ...creds,
        connectionString: (creds.connectionString ?? "").replace(
          /BlobEndpoint=[^;]+/,
          "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1",
        ),
      };
    else down = { ...creds, apiEndpoint: "http://127.0.0.1:1" };
    const err = await expectStorageError(createObjectStore(down, { retries: 0 }).check(), "Unavailable");
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});
