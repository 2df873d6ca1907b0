import type { SecretBox } from "@trainyard/common";
import type { Connection, mongo, Types } from "mongoose";
import type { DocumentLocks } from "./locks";

/**
 * Every place a secret is stored sealed, with the associated data its repository binds in and the
 * document lock its repository writes under. Keep in step with credentials.ts,
 * storage-credentials.ts and alerting.ts (rotate-secrets.int.test.ts opens the results through
 * those repositories, so a drift shows there).
 */
const SEALED: { collection: string; fields: string[]; aad: (id: string) => string; lock?: (id: string) => string }[] = [
  { collection: "credentials", fields: ["sealedPrivateKey", "sealedPassphrase"], aad: (id) => id },
  { collection: "storage_credentials", fields: ["sealed"], aad: (id) => id },
  // Channels are rewritten by replaceChannel under this lock (FerretDB v1 updates are not atomic).
  { collection: "alert_channels", fields: ["sealed"], aad: (id) => `alert-channel:${id}`, lock: (id) => `alert-channel:${id}` },
];

export interface RotationCounts {
  /** Documents holding at least one sealed value. */
  scanned: number;
  /** Documents re-sealed with the current key. */
  rotated: number;
  /** Documents left as they were: a value no ring key opens, or a write that kept losing to others. */
  failed: number;
}

/** What went wrong with one document; never holds a secret. */
export interface RotationFailure {
  collection: string;
  id: string;
  reason: string;
}

const MAX_TRIES = 3;

type SealedSpec = (typeof SEALED)[number];
type Doc = { _id: Types.ObjectId } & Record<string, unknown>;
type Outcome = "unchanged" | "rotated" | "raced";

/**
 * Re-seal every stored secret with the box's current key. Values already on it are skipped, so a
 * second run rotates nothing (run it again to check). Each document is written with a conditional
 * update on the envelopes read, so a concurrent change is never overwritten: the document is read
 * again and retried. Plaintext lives only in memory, between open and seal.
 */
export async function rotateSecrets(
  conn: Connection,
  box: SecretBox,
  locks: DocumentLocks,
  opts: { onFailure?: (f: RotationFailure) => void } = {},
): Promise<Record<string, RotationCounts>> {
  const db = conn.db;
  if (!db) throw new Error("MongoDB connection is not open");
  const result: Record<string, RotationCounts> = {};
  for (const spec of SEALED) {
    const counts: RotationCounts = { scanned: 0, rotated: 0, failed: 0 };
    result[spec.collection] = counts;
    const coll = db.collection<Doc>(spec.collection);
    const projection = Object.fromEntries(spec.fields.map((f) => [f, 1]));
    // In _id order: an index walk meets each document once, even as documents are rewritten.
    for await (const first of coll.find({}, { projection }).sort({ _id: 1 })) {
      if (!spec.fields.some((f) => typeof first[f] === "string")) continue;
      counts.scanned++;
      const id = first._id.toString();
      let doc: Doc | null = first;
      let outcome: Outcome | Error = "raced";
      for (let tries = 0; tries < MAX_TRIES && outcome === "raced"; tries++) {
        if (tries > 0) doc = await coll.findOne({ _id: first._id }, { projection });
        if (!doc)
          outcome = "unchanged"; // deleted meanwhile
        else {
          const current: Doc = doc;
          const once = () => rotateDocument(coll, spec, box, current);
          outcome = await (spec.lock ? locks.withLock(spec.lock(id), once) : once()).catch((err: Error) => err);
        }
      }
      if (outcome === "rotated") counts.rotated++;
      else if (outcome !== "unchanged") {
        counts.failed++;
        // SecretBox errors name keys and records, never the plaintext.
        const reason = outcome === "raced" ? `changed concurrently ${MAX_TRIES} times` : outcome.message;
        opts.onFailure?.({ collection: spec.collection, id, reason });
      }
    }
  }
  return result;
}

/** Re-seal the document's values that are not on the current key, if they are still the ones read. */
async function rotateDocument(coll: mongo.Collection<Doc>, spec: SealedSpec, box: SecretBox, doc: Doc): Promise<Outcome> {
  const aad = spec.aad(doc._id.toString());
  const filter: Record<string, unknown> = { _id: doc._id };
  const set: Record<string, string> = {};
  for (const f of spec.fields) {
    const sealed = doc[f];
    if (typeof sealed !== "string" || !box.needsRotation(sealed)) continue;
    filter[f] = sealed;
    set[f] = box.seal(box.open(sealed, aad), aad);
  }
  if (Object.keys(set).length === 0) return "unchanged";
  const { matchedCount } = await coll.updateOne(filter, { $set: set });
  return matchedCount === 1 ? "rotated" : "raced";
}
