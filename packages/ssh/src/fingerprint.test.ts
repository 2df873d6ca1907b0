import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintOf, fingerprintOfPublicKey, fingerprintsEqual, normalizeFingerprint } from "./fingerprint";
import { generateKey } from "./test-support/fake-sshd";

// Generated with `ssh-keygen -t ed25519`; `ssh-keygen -lf` printed the fingerprint below.
const KNOWN_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF9q3X4YMmEE7L5aEw3UjLOsFMUSaFSvBVYIDMnjemwA trainyard-test";
const KNOWN_FP = "SHA256:CUzZdFEFWbhEEZ+JlQVipdjQIxdLjjQy0V8Io5+4+bA";

function hasSshKeygen(): boolean {
  try {
    execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
    return true;
  } catch (e) {
    return (e as { status?: number }).status !== undefined && (e as { code?: string }).code !== "ENOENT";
  }
}

describe("fingerprintOf", () => {
  it("matches the fingerprint ssh-keygen -lf printed for a known key", () => {
    const blob = Buffer.from(KNOWN_PUB.split(" ")[1]!, "base64");
    expect(fingerprintOf(blob)).toBe(KNOWN_FP);
    expect(fingerprintOfPublicKey(KNOWN_PUB)).toBe(KNOWN_FP);
  });

  it("is SHA256: + unpadded base64 of sha256 over the key blob", () => {
    const kp = generateKey();
    const blob = Buffer.from(kp.public.split(" ")[1]!, "base64");
    const expected = "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
    const fp = fingerprintOf(blob);
    expect(fp).toBe(expected);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it.runIf(hasSshKeygen())("agrees with ssh-keygen -lf for a freshly generated key", () => {
    const kp = generateKey();
    const dir = mkdtempSync(join(tmpdir(), "ty-fp-"));
    try {
      const file = join(dir, "k.pub");
      writeFileSync(file, `${kp.public.trim()}\n`);
      const out = execFileSync("ssh-keygen", ["-lf", file], { encoding: "utf8" });
      expect(out.split(" ")[1]).toBe(fingerprintOfPublicKey(kp.public));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("normalizeFingerprint / fingerprintsEqual", () => {
  it("accepts the ssh-keygen form, tolerating padding and spaces", () => {
    expect(normalizeFingerprint(KNOWN_FP)).toBe(KNOWN_FP);
    expect(normalizeFingerprint(` ${KNOWN_FP}= `)).toBe(KNOWN_FP);
  });
  it("rejects anything else", () => {
    expect(normalizeFingerprint(undefined)).toBeUndefined();
    expect(normalizeFingerprint("")).toBeUndefined();
    expect(normalizeFingerprint("MD5:aa:bb")).toBeUndefined();
    expect(normalizeFingerprint("SHA256:short")).toBeUndefined();
    expect(normalizeFingerprint(KNOWN_FP.replace("SHA256:", "sha256:"))).toBeUndefined();
  });
  it("compares exactly", () => {
    expect(fingerprintsEqual(KNOWN_FP, KNOWN_FP)).toBe(true);
    expect(fingerprintsEqual(KNOWN_FP, KNOWN_FP.slice(0, -1) + "B")).toBe(false);
    expect(fingerprintsEqual(KNOWN_FP, "SHA256:x")).toBe(false);
  });
});
