import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * AES-256-GCM envelope for secrets at rest (SSH keys, storage credentials).
 * Format: "v1:<iv b64>:<tag b64>:<ciphertext b64>". The key comes from TRAINYARD_SECRET_KEY.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(keyBase64: string) {
    const key = Buffer.from(keyBase64, "base64");
    if (key.length !== 32) throw new Error("TRAINYARD_SECRET_KEY must be 32 bytes, base64-encoded");
    this.key = key;
  }

  seal(plaintext: string, associatedData = ""): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(associatedData));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v1", iv.toString("base64"), cipher.getAuthTag().toString("base64"), ct.toString("base64")].join(":");
  }

  open(sealed: string, associatedData = ""): string {
    const [version, iv, tag, ct] = sealed.split(":");
    if (version !== "v1" || !iv || !tag || ct === undefined) throw new Error("unrecognised secret envelope");
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64"));
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(ct, "base64")), decipher.final()]).toString("utf8");
  }
}
