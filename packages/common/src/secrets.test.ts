import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SecretBox } from "./secrets";

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
