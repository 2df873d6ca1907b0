import { createHash, timingSafeEqual } from "node:crypto";

const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/**
 * OpenSSH's SHA256 fingerprint of a public host key blob (the SSH wire encoding, i.e. the base64 part
 * of an `ssh-ed25519 AAAA…` line decoded): "SHA256:" + base64(sha256(blob)) without '=' padding —
 * the same string `ssh-keygen -lf` prints.
 */
export function fingerprintOf(hostKey: Buffer): string {
  return "SHA256:" + createHash("sha256").update(hostKey).digest("base64").replace(/=+$/, "");
}

/** Fingerprint of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`) or of its bare base64 blob. */
export function fingerprintOfPublicKey(publicKeyLine: string): string {
  const parts = publicKeyLine.trim().split(/\s+/);
  const blob = parts.length >= 2 ? parts[1] : parts[0];
  if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) throw new Error("not an OpenSSH public key line");
  return fingerprintOf(Buffer.from(blob, "base64"));
}

/**
 * A pinned fingerprint in canonical form, or undefined if it is not a well-formed SHA256 fingerprint.
 * Accepts the form `ssh-keygen -lf` prints, tolerating surrounding spaces and trailing '=' padding.
 */
export function normalizeFingerprint(fp: string | undefined | null): string | undefined {
  if (typeof fp !== "string") return undefined;
  const s = fp.trim().replace(/=+$/, "");
  return FINGERPRINT_RE.test(s) ? s : undefined;
}

/** Constant-time comparison of two fingerprints (canonical form). */
export function fingerprintsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
