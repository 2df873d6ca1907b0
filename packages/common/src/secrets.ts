import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

interface RingKey {
  kid: string;
  key: Buffer;
}

/** A key's id: enough to tell keys apart in an envelope, useless for guessing the key. */
function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

function ringKey(keyBase64: string, name: string): RingKey {
  const key = Buffer.from(keyBase64, "base64");
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes, base64-encoded`);
  return { kid: keyId(key), key };
}

/** Comma-separated base64 keys (TRAINYARD_SECRET_KEY_PREVIOUS); blanks are ignored. */
export function parseKeyList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter(Boolean);
}

/**
 * AES-256-GCM envelopes for secrets at rest (SSH keys, storage credentials, alert channel secrets).
 *
 * Seals with the current key as "v2:<kid>:<iv b64>:<tag b64>:<ciphertext b64>", where kid is the
 * first 8 hex characters of sha256(key). Opens with any key of the ring (current + previous), so a
 * key can be rotated without downtime: add the new key as current and the old one as previous,
 * re-seal what is stored (rotateSecrets in @trainyard/db), then drop the old key. Legacy "v1:"
 * envelopes (no kid) are opened by trying each ring key.
 */
export class SecretBox {
  private readonly current: RingKey;
  private readonly ring: RingKey[];

  constructor(keyBase64: string, opts: { previous?: readonly string[] } = {}) {
    this.current = ringKey(keyBase64, "TRAINYARD_SECRET_KEY");
    const previous = (opts.previous ?? []).map((k) => ringKey(k, "TRAINYARD_SECRET_KEY_PREVIOUS"));
    this.ring = [this.current, ...previous.filter((p) => !p.key.equals(this.current.key))];
  }

  /** The id of the key new envelopes are sealed with. */
  get kid(): string {
    return this.current.kid;
  }

  seal(plaintext: string, associatedData = ""): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.current.key, iv);
    cipher.setAAD(Buffer.from(associatedData));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v2", this.current.kid, iv.toString("base64"), cipher.getAuthTag().toString("base64"), ct.toString("base64")].join(
      ":",
    );
  }

  open(sealed: string, associatedData = ""): string {
    const env = parseEnvelope(sealed);
    // A kid names the key; two keys sharing one is unlikely but possible, so try each that matches.
    const candidates = env.kid === undefined ? this.ring : this.ring.filter((k) => k.kid === env.kid);
    if (candidates.length === 0) throw new Error(`secret was sealed with key ${env.kid}, which is not in the key ring`);
    for (const { key } of candidates) {
      try {
        return decrypt(key, env, associatedData);
      } catch {
        // wrong key, wrong associated data or tampered: try the next candidate
      }
    }
    throw new Error("secret envelope does not open with any key in the ring (wrong key, record or tampered)");
  }

  /** True unless `sealed` is a v2 envelope of the current key (legacy v1 envelopes always need it). */
  needsRotation(sealed: string): boolean {
    return parseEnvelope(sealed).kid !== this.current.kid;
  }
}

interface Envelope {
  kid?: string;
  iv: string;
  tag: string;
  ct: string;
}

function parseEnvelope(sealed: string): Envelope {
  const parts = sealed.split(":");
  if (parts[0] === "v1" && parts.length === 4) return { iv: parts[1]!, tag: parts[2]!, ct: parts[3]! };
  if (parts[0] === "v2" && parts.length === 5) return { kid: parts[1]!, iv: parts[2]!, tag: parts[3]!, ct: parts[4]! };
  throw new Error("unrecognised secret envelope");
}

function decrypt(key: Buffer, env: Envelope, associatedData: string): string {
  // A fixed tag length: a shortened tag would be easier to forge.
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(env.iv, "base64"), { authTagLength: 16 });
  decipher.setAAD(Buffer.from(associatedData));
  decipher.setAuthTag(Buffer.from(env.tag, "base64"));
  return Buffer.concat([decipher.update(Buffer.from(env.ct, "base64")), decipher.final()]).toString("utf8");
}

/** The installation's SecretBox: TRAINYARD_SECRET_KEY seals, TRAINYARD_SECRET_KEY_PREVIOUS still opens. */
export function secretBoxFromConfig(config: { TRAINYARD_SECRET_KEY: string; TRAINYARD_SECRET_KEY_PREVIOUS?: string }): SecretBox {
  return new SecretBox(config.TRAINYARD_SECRET_KEY, { previous: parseKeyList(config.TRAINYARD_SECRET_KEY_PREVIOUS) });
}
