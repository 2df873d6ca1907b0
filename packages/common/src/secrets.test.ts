import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { alertingConfigShape, apiConfigShape, loadConfig } from "./config";
import { parseKeyList, SecretBox, secretBoxFromConfig } from "./secrets";

describe("SecretBox", () => {
  const box = new SecretBox(randomBytes(32).toString("base64"));

  it("round-trips and never stores the plaintext", () => {
    const secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n";
    const sealed = box.seal(secret, "id1");
    expect(sealed).not.toContain("PRIVATE KEY");
    expect(box.open(sealed, "id1")).toBe(secret);
    expect(box.seal(secret, "id1")).not.toBe(sealed); // fresh IV each time
  });

  it("refuses a tampered envelope, the wrong key or the wrong associated data", () => {
    const sealed = box.seal("s3cret", "id1");
    expect(() => box.open(sealed, "id2")).toThrow();
    expect(() => new SecretBox(randomBytes(32).toString("base64")).open(sealed, "id1")).toThrow();
    const parts = sealed.split(":");
    parts[3] = Buffer.from("tampered").toString("base64");
    expect(() => box.open(parts.join(":"), "id1")).toThrow();
  });

  it("requires a 32-byte key", () => {
    expect(() => new SecretBox(randomBytes(16).toString("base64"))).toThrow(/32 bytes/);
  });
});

describe("SecretBox key ring", () => {
  const oldKey = randomBytes(32).toString("base64");
  const newKey = randomBytes(32).toString("base64");
  const kidOf = (key: string) => createHash("sha256").update(Buffer.from(key, "base64")).digest("hex").slice(0, 8);

  /** A v1 envelope as the SecretBox before key rings wrote it. */
  function sealV1(key: string, plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(key, "base64"), iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v1", iv.toString("base64"), cipher.getAuthTag().toString("base64"), ct.toString("base64")].join(":");
  }

  it("seals v2 envelopes named by the current key's kid, which does not reveal the key", () => {
    const box = new SecretBox(newKey, { previous: [oldKey] });
    const sealed = box.seal("s3cret", "id1");
    expect(box.kid).toBe(kidOf(newKey));
    expect(sealed.split(":").slice(0, 2)).toEqual(["v2", kidOf(newKey)]);
    expect(sealed).not.toContain(newKey);
    expect(box.needsRotation(sealed)).toBe(false);
  });

  it("opens envelopes of a previous key, and only while that key is in the ring", () => {
    const sealedOld = new SecretBox(oldKey).seal("s3cret", "id1");
    const ring = new SecretBox(newKey, { previous: [oldKey] });
    expect(ring.open(sealedOld, "id1")).toBe("s3cret");
    expect(ring.needsRotation(sealedOld)).toBe(true);
    expect(() => new SecretBox(newKey).open(sealedOld, "id1")).toThrow(/not in the key ring/);
    // The previous key opens but never seals.
    expect(() => new SecretBox(oldKey).open(ring.seal("x", "id1"), "id1")).toThrow(/not in the key ring/);
  });

  it("still opens legacy v1 envelopes with any ring key, and always rotates them", () => {
    const legacy = sealV1(oldKey, "legacy", "id1");
    expect(new SecretBox(oldKey).open(legacy, "id1")).toBe("legacy");
    expect(new SecretBox(newKey, { previous: [oldKey] }).open(legacy, "id1")).toBe("legacy");
    expect(new SecretBox(oldKey).needsRotation(legacy)).toBe(true);
    expect(() => new SecretBox(newKey).open(legacy, "id1")).toThrow(/any key in the ring/);
    expect(() => new SecretBox(oldKey).open(legacy, "id2")).toThrow();
  });

  it("refuses a v2 envelope whose kid was changed, and unknown formats", () => {
    const box = new SecretBox(newKey, { previous: [oldKey] });
    const parts = box.seal("s3cret", "id1").split(":");
    parts[1] = kidOf(oldKey);
    expect(() => box.open(parts.join(":"), "id1")).toThrow();
    expect(() => box.open("v3:a:b:c:d", "id1")).toThrow(/unrecognised/);
    expect(() => box.needsRotation("plaintext")).toThrow(/unrecognised/);
  });

  it("validates previous keys and reads them from config", () => {
    expect(() => new SecretBox(newKey, { previous: ["short"] })).toThrow(/TRAINYARD_SECRET_KEY_PREVIOUS must be 32 bytes/);
    expect(parseKeyList(` ${oldKey} ,, ${newKey}`)).toEqual([oldKey, newKey]);
    expect(parseKeyList(undefined)).toEqual([]);
    const sealedOld = new SecretBox(oldKey).seal("s3cret");
    const box = secretBoxFromConfig({ TRAINYARD_SECRET_KEY: newKey, TRAINYARD_SECRET_KEY_PREVIOUS: oldKey });
    expect(box.open(sealedOld)).toBe("s3cret");
    expect(box.kid).toBe(kidOf(newKey));
    expect(secretBoxFromConfig({ TRAINYARD_SECRET_KEY: newKey }).kid).toBe(kidOf(newKey));
  });

  it("config accepts a comma-separated TRAINYARD_SECRET_KEY_PREVIOUS and rejects a bad key in it", () => {
    const env = { TRAINYARD_SECRET_KEY: newKey, API_ADMIN_TOKEN: "a-long-enough-admin-token" };
    expect(
      loadConfig(apiConfigShape, { ...env, TRAINYARD_SECRET_KEY_PREVIOUS: `${oldKey},${oldKey}` }).TRAINYARD_SECRET_KEY_PREVIOUS,
    ).toBe(`${oldKey},${oldKey}`);
    expect(loadConfig(apiConfigShape, env).TRAINYARD_SECRET_KEY_PREVIOUS).toBeUndefined();
    expect(() => loadConfig(apiConfigShape, { ...env, TRAINYARD_SECRET_KEY_PREVIOUS: `${oldKey},short` })).toThrow(
      /TRAINYARD_SECRET_KEY_PREVIOUS/,
    );
    expect(() => loadConfig(alertingConfigShape, { TRAINYARD_SECRET_KEY: newKey, TRAINYARD_SECRET_KEY_PREVIOUS: "x" })).toThrow(
      /TRAINYARD_SECRET_KEY_PREVIOUS/,
    );
  });
});
