import { createCipheriv, randomBytes } from "node:crypto";
import { alertChannelInputSchema, SecretBox } from "@trainyard/common";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRepos, type RedisDocumentLocks, rotateSecrets } from "./index";
import { openTestStore, type TestStore } from "./testing";

const OLD = randomBytes(32).toString("base64");
const NEW = randomBytes(32).toString("base64");
const oldBox = new SecretBox(OLD);
const newBox = new SecretBox(NEW);
const ring = new SecretBox(NEW, { previous: [OLD] });

// Distinctive plaintexts, so a leak into a raw document is easy to spot.
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nrot-private-material\n-----END OPENSSH PRIVATE KEY-----";
const PASSPHRASE = "rot-passphrase-material";
const LEGACY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nrot-legacy-material\n-----END OPENSSH PRIVATE KEY-----";
const STORAGE = { accessKeyId: "AKIAROTATION", secretAccessKey: "rot-storage-material" };
const WEBHOOK_SECRET = `whsec_${Buffer.from("rot-webhook-material-0123456789ab").toString("base64")}`;
const SLACK_URL = "https://hooks.slack.com/services/T000/B000/rotslackmaterial";
const PLAINTEXTS = [
  "rot-private-material",
  PASSPHRASE,
  "rot-legacy-material",
  "rot-storage-material",
  WEBHOOK_SECRET,
  "rotslackmaterial",
];

const FIELDS: Record<string, { fields: string[]; aad: (id: string) => string }> = {
  credentials: { fields: ["sealedPrivateKey", "sealedPassphrase"], aad: (id) => id },
  storage_credentials: { fields: ["sealed"], aad: (id) => id },
  alert_channels: { fields: ["sealed"], aad: (id) => `alert-channel:${id}` },
};

let conn: Connection;
let locks: RedisDocumentLocks;

/** An envelope as SecretBox wrote it before key rings ("v1", no kid). */
function sealV1(key: string, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(key, "base64"), iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return ["v1", iv.toString("base64"), cipher.getAuthTag().toString("base64"), ct.toString("base64")].join(":");
}

/** Every sealed value in the database, with what it must open to its associated data. */
async function sealedValues(): Promise<{ collection: string; value: string; aad: string }[]> {
  const out: { collection: string; value: string; aad: string }[] = [];
  for (const [collection, spec] of Object.entries(FIELDS)) {
    for (const doc of await conn.db!.collection(collection).find({}).toArray()) {
      for (const f of spec.fields)
        if (typeof doc[f] === "string") out.push({ collection, value: doc[f], aad: spec.aad(doc._id.toString()) });
    }
  }
  return out;
}

async function rawDump(): Promise<string> {
  const all = await Promise.all(Object.keys(FIELDS).map((c) => conn.db!.collection(c).find({}).toArray()));
  return JSON.stringify(all);
}

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore("rot");
  ({ conn, locks } = store);
});
afterAll(() => store?.close());

describe("rotateSecrets", () => {
  it("re-seals every secret with the new key, once, without plaintext at rest", async () => {
    const before = createRepos(conn, oldBox, locks);
    const sshId = await before.credentials.createSsh("default", { privateKey: PRIVATE_KEY, passphrase: PASSPHRASE });
    // A credential stored before key rings existed: a "v1" envelope of the old key.
    const legacyId = new Types.ObjectId();
    await conn.db!.collection("credentials").insertOne({
      _id: legacyId,
      team: "default",
      kind: "ssh",
      sealedPrivateKey: sealV1(OLD, LEGACY_KEY, legacyId.toString()),
      createdAt: new Date(),
    });
    const storage = await before.storageCredentials.create("default", "s3", { backend: "s3", bucket: "b" }, STORAGE);
    const hook = await before.alerts.createChannel(
      "default",
      alertChannelInputSchema.parse({ type: "webhook", name: "hook", url: "https://example.com/h", secret: WEBHOOK_SECRET }),
    );
    const slack = await before.alerts.createChannel(
      "default",
      alertChannelInputSchema.parse({ type: "slack", name: "sl", url: SLACK_URL }),
    );
    // Nothing sealed: not counted.
    await before.alerts.createChannel(
      "default",
      alertChannelInputSchema.parse({ type: "email", name: "mail", to: ["a@example.com"] }),
    );
    expect((await sealedValues()).every((s) => ring.needsRotation(s.value))).toBe(true);

    const failures: unknown[] = [];
    const first = await rotateSecrets(conn, ring, locks, { onFailure: (f) => failures.push(f) });
    expect(first).toEqual({
      credentials: { scanned: 2, rotated: 2, failed: 0 },
      storage_credentials: { scanned: 1, rotated: 1, failed: 0 },
      alert_channels: { scanned: 2, rotated: 2, failed: 0 },
    });
    expect(failures).toEqual([]);

    const sealed = await sealedValues();
    expect(sealed).toHaveLength(6);
    for (const s of sealed) {
      expect(s.value.startsWith(`v2:${newBox.kid}:`)).toBe(true);
      expect(() => oldBox.open(s.value, s.aad)).toThrow();
    }

    // Opened through the repositories with only the new key: every original plaintext, so the
    // associated data the rotation used is the one each repository binds in.
    const after = createRepos(conn, newBox, locks);
    expect(await after.credentials.openSsh(sshId)).toEqual({ privateKey: PRIVATE_KEY, passphrase: PASSPHRASE });
    expect(await after.credentials.openSsh(legacyId)).toEqual({ privateKey: LEGACY_KEY });
    expect(after.storageCredentials.open((await after.storageCredentials.byName("default", "s3"))!)).toEqual(STORAGE);
    expect(storage.sealed).not.toBe((await after.storageCredentials.byName("default", "s3"))!.sealed);
    expect(after.alerts.openSecrets(await after.alerts.getChannel("default", hook._id.toString()))).toEqual({
      url: "https://example.com/h",
      secret: WEBHOOK_SECRET,
    });
    expect(after.alerts.openSecrets(await after.alerts.getChannel("default", slack._id.toString()))).toEqual({ url: SLACK_URL });

    const dump = await rawDump();
    for (const p of PLAINTEXTS) expect(dump).not.toContain(p);

    const second = await rotateSecrets(conn, ring, locks);
    expect(second).toEqual({
      credentials: { scanned: 2, rotated: 0, failed: 0 },
      storage_credentials: { scanned: 1, rotated: 0, failed: 0 },
      alert_channels: { scanned: 2, rotated: 0, failed: 0 },
    });
    expect(await rawDump()).toBe(dump);
  });

  it("counts a value no ring key opens as failed, leaves it untouched and reports no secret", async () => {
    const strayId = new Types.ObjectId();
    const strayBox = new SecretBox(randomBytes(32).toString("base64"));
    const staleSealed = strayBox.seal("rot-stray-material", strayId.toString());
    await conn.db!.collection("credentials").insertOne({
      _id: strayId,
      team: "default",
      kind: "ssh",
      sealedPrivateKey: staleSealed,
      createdAt: new Date(),
    });
    const failures: { collection: string; id: string; reason: string }[] = [];
    const counts = await rotateSecrets(conn, ring, locks, { onFailure: (f) => failures.push(f) });
    expect(counts.credentials).toEqual({ scanned: 3, rotated: 0, failed: 1 });
    expect(failures).toEqual([
      { collection: "credentials", id: strayId.toString(), reason: expect.stringContaining(strayBox.kid) },
    ]);
    expect(JSON.stringify(failures)).not.toContain("rot-stray-material");
    expect((await conn.db!.collection("credentials").findOne({ _id: strayId }))?.sealedPrivateKey).toBe(staleSealed);
    await conn.db!.collection("credentials").deleteOne({ _id: strayId });
  });
});
