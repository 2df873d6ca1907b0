import { createHash } from "node:crypto";
import { HostKeyNotPinnedError } from "./errors";
import { normalizeFingerprint } from "./fingerprint";
import type { SshCredentials, SshEndpoint, SshTarget } from "./types";

// Validation and identity of SSH endpoints: what a pool checks before touching the network, and
// the keys it shares connections under.

/** The pin of an endpoint in canonical form; HostKeyNotPinnedError when missing or malformed. */
export function requirePin(ep: SshEndpoint): string {
  if (ep.hostKeyFingerprint === undefined || ep.hostKeyFingerprint === null || ep.hostKeyFingerprint === "") {
    throw new HostKeyNotPinnedError(ep.host, ep.port);
  }
  const fp = normalizeFingerprint(ep.hostKeyFingerprint);
  if (!fp) {
    throw new HostKeyNotPinnedError(
      ep.host,
      ep.port,
      'the pinned host key fingerprint is not of the form "SHA256:<43 base64 characters>"',
    );
  }
  return fp;
}

export function validateEndpoint(ep: SshEndpoint, what: string): void {
  if (!ep || typeof ep.host !== "string" || ep.host === "") throw new TypeError(`${what}: host is required`);
  if (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535) throw new TypeError(`${what}: port must be 1..65535`);
  if (typeof ep.user !== "string" || ep.user === "") throw new TypeError(`${what}: user is required`);
}

/** Throws (HostKeyNotPinnedError, TypeError) before anything touches the network. */
export function validateTarget(target: SshTarget): void {
  validateEndpoint(target, "SSH target");
  if (target.jumpHost) {
    validateEndpoint(target.jumpHost, "SSH jump host");
    requirePin(target.jumpHost);
  }
  requirePin(target);
}

export function endpointKey(ep: SshEndpoint): string {
  return JSON.stringify([ep.user, ep.host, ep.port, normalizeFingerprint(ep.hostKeyFingerprint) ?? ""]);
}

export function targetKey(t: SshTarget): string {
  return endpointKey(t) + (t.jumpHost ? ` via ${endpointKey(t.jumpHost)}` : "");
}

/** Connections are shared only between callers with the same credentials (a hash; the key itself is not kept). */
export function credsKey(c: SshCredentials): string {
  return createHash("sha256")
    .update(c.privateKey)
    .update("\0")
    .update(c.passphrase ?? "")
    .digest("base64")
    .slice(0, 22);
}
