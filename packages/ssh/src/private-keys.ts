import type { ParsedKey } from "ssh2";
import ssh2 from "ssh2";
import { credsKey } from "./endpoints";
import { SshConnectError } from "./errors";
import { scrub } from "./internal";
import type { SshCredentials, SshEndpoint } from "./types";

const { utils } = ssh2;
/** Parsed (decrypted) private keys kept per pool, so a passphrase is run through bcrypt once, not per connect. */
const KEY_CACHE_SIZE = 64;

/** A small LRU of parsed private keys, by a hash of the credentials (the key itself is the cache's value only). */
export class PrivateKeyCache {
  private readonly keys = new Map<string, ParsedKey>();

  /**
   * The private key, parsed and decrypted once per pool (ssh2 decrypts a passphrase-protected OpenSSH key
   * with a pure-JS bcrypt that blocks the event loop for ~0.7 s; it would otherwise do so on every connect).
   */
  get(creds: SshCredentials, ep: SshEndpoint, where: string): ParsedKey {
    const ck = credsKey(creds);
    const hit = this.keys.get(ck);
    if (hit) {
      this.keys.delete(ck);
      this.keys.set(ck, hit);
      return hit;
    }
    let parsed: ParsedKey | Error;
    try {
      const r = utils.parseKey(creds.privateKey, creds.passphrase);
      parsed = Array.isArray(r) ? (r[0] ?? new Error("no key found")) : r;
    } catch (e) {
      parsed = e instanceof Error ? e : new Error(String(e));
    }
    if (!(parsed instanceof Error) && !parsed.isPrivateKey()) parsed = new Error("not a private key");
    if (parsed instanceof Error) {
      throw new SshConnectError(
        ep.host,
        ep.port,
        "key",
        `cannot use the private key for ${where}: ${scrub(parsed.message, creds)}`,
      );
    }
    this.keys.set(ck, parsed);
    if (this.keys.size > KEY_CACHE_SIZE) {
      const oldest = this.keys.keys().next().value;
      if (oldest !== undefined) this.keys.delete(oldest);
    }
    return parsed;
  }

  clear(): void {
    this.keys.clear();
  }
}
