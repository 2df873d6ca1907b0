import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { AuthMethod, ConnectConfig, ParsedKey, PublicKeyAuthMethod, Client as SshClient } from "ssh2";
import ssh2 from "ssh2";
import { HostKeyMismatchError, SshConnectError } from "./errors";
import { fingerprintOf, fingerprintsEqual } from "./fingerprint";
import { Connection, label, scrub } from "./internal";
import type { SshCredentials, SshEndpoint, SshLogger } from "./types";

const { Client } = ssh2;

// One SSH handshake over a socket or a jump host's tunnel: public-key auth only, the host key
// checked against its pin on the first key exchange and every re-key, ssh2's errors turned into
// errors that say what to fix.

/** What a handshake reads and records of the pool it connects for. */
export interface HandshakeContext {
  options: {
    connectTimeoutMs: number;
    keepaliveIntervalMs: number;
    keepaliveCountMax: number;
    idleTimeoutMs: number;
    maxChannelsPerConnection: number;
  };
  log: SshLogger;
  /** Clients still being set up, so a pool's close() can destroy them. */
  connecting: Set<SshClient>;
  /** Host key blobs that matched their pin, by "host:port". */
  verifiedKeys: Map<string, Buffer>;
}

const UNREACHABLE = new Set(["EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNRESET", "EPIPE", "EADDRNOTAVAIL"]);

interface ErrLike {
  message?: string;
  code?: string;
  level?: string;
}

export function handshake(
  ctx: HandshakeContext,
  ep: SshEndpoint,
  pinned: string,
  creds: SshCredentials,
  privateKey: ParsedKey,
  sock: Duplex,
  key: string,
  ek: string,
  extra: { socket?: Socket; via?: SshEndpoint; onBusyChange?: (busy: boolean) => void },
): Promise<Connection> {
  const client = new Client();
  const where = label(ep) + (extra.via ? ` via ${label(extra.via)}` : "");
  ctx.connecting.add(client);
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    let mismatch: string | undefined;
    let conn: Connection | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      ctx.connecting.delete(client);
      ctx.log.warn({ ssh: where, err: err.message }, "ssh connect failed");
      try {
        client.destroy();
      } catch {
        // ignore
      }
      sock.destroy();
      reject(err);
    };
    client.on("error", (err: Error & ErrLike) => {
      if (!settled) {
        fail(connectError(ctx.options.connectTimeoutMs, err, ep, where, pinned, mismatch, creds));
        return;
      }
      conn?.noteError(err);
      ctx.log.warn({ ssh: where, err: scrub(err.message, creds), level: err.level }, "ssh connection error");
    });
    client.on("close", () => {
      if (!settled) {
        fail(
          mismatch
            ? new HostKeyMismatchError(ep.host, ep.port, pinned, mismatch)
            : new SshConnectError(ep.host, ep.port, "closed", `SSH connection to ${where} closed during the handshake`),
        );
        return;
      }
      if (conn) {
        ctx.log.debug({ ssh: where }, "ssh connection closed");
        conn.markClosed();
      }
    });
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      ctx.connecting.delete(client);
      conn = new Connection(key, ek, ep, client, {
        maxSessions: ctx.options.maxChannelsPerConnection,
        idleTimeoutMs: ctx.options.idleTimeoutMs,
        logger: ctx.log,
        socket: extra.socket,
        via: extra.via,
        onBusyChange: extra.onBusyChange,
      });
      ctx.log.debug({ ssh: where }, "ssh connected");
      resolve(conn);
    });
    const auth: PublicKeyAuthMethod = { type: "publickey", username: ep.user, key: privateKey };
    const cfg: ConnectConfig = {
      sock: sock as ConnectConfig["sock"],
      host: ep.host,
      port: ep.port,
      username: ep.user,
      // public-key auth only, with the already-parsed key (no 'none' probe, no password, no agent)
      authHandler: [auth as AuthMethod],
      readyTimeout: ctx.options.connectTimeoutMs,
      keepaliveInterval: ctx.options.keepaliveIntervalMs,
      keepaliveCountMax: ctx.options.keepaliveCountMax,
      // Called for the initial key exchange and for every re-key: the key must match the pin each time.
      hostVerifier: (hostKey: Buffer): boolean => {
        const actual = fingerprintOf(hostKey);
        if (fingerprintsEqual(actual, pinned)) {
          ctx.verifiedKeys.set(`${ep.host}:${ep.port}`, Buffer.from(hostKey));
          return true;
        }
        mismatch = actual;
        ctx.log.error({ ssh: where, expected: pinned, actual }, "ssh host key mismatch: refusing to connect");
        return false;
      },
    };
    try {
      client.connect(cfg);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      fail(
        new SshConnectError(ep.host, ep.port, "protocol", `cannot set up the SSH connection to ${where}: ${scrub(msg, creds)}`),
      );
    }
  });
}

function connectError(
  connectTimeoutMs: number,
  err: Error & ErrLike,
  ep: SshEndpoint,
  where: string,
  pinned: string,
  mismatch: string | undefined,
  creds: SshCredentials,
): Error {
  if (mismatch) return new HostKeyMismatchError(ep.host, ep.port, pinned, mismatch);
  const msg = scrub(err.message ?? String(err), creds);
  const { host, port } = ep;
  if (err.level === "client-authentication") {
    return new SshConnectError(
      host,
      port,
      "auth",
      `authentication failed for ${where}: the server did not accept the private key`,
    );
  }
  if (err.level === "client-timeout") {
    return new SshConnectError(host, port, "timeout", `timed out connecting to ${where} (limit ${connectTimeoutMs} ms): ${msg}`, {
      cause: err,
    });
  }
  if (err.code === "ECONNREFUSED") {
    return new SshConnectError(host, port, "refused", `connection refused by ${host}:${port} (no SSH server listening?)`, {
      cause: err,
    });
  }
  if (err.code === "ETIMEDOUT") {
    return new SshConnectError(host, port, "timeout", `timed out connecting to ${where}: ${msg}`, { cause: err });
  }
  if (err.code && UNREACHABLE.has(err.code)) {
    return new SshConnectError(host, port, "unreachable", `cannot reach ${where}: ${msg}`, { cause: err });
  }
  return new SshConnectError(host, port, "protocol", `SSH connection to ${where} failed: ${msg}`);
}
