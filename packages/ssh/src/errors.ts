/**
 * Error classes of @trainyard/ssh. Messages name the endpoint (`user@host:port` or `host:port`) and the
 * cause; they never contain key material, passphrases or the command text.
 */

/** The server presented a host key whose fingerprint differs from the pinned one. Nothing ran. */
export class HostKeyMismatchError extends Error {
  override readonly name = "HostKeyMismatchError";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `host key mismatch for ${host}:${port}: expected ${expected}, server presented ${actual}; ` +
        "refusing to connect (the node's host key changed, or something is intercepting the connection)",
    );
  }
}

/** No (usable) fingerprint pinned for an endpoint: Trainyard never connects blindly. */
export class HostKeyNotPinnedError extends Error {
  override readonly name = "HostKeyNotPinnedError";
  constructor(
    readonly host: string,
    readonly port: number,
    detail = "no host key fingerprint is pinned",
  ) {
    super(`${detail} for ${host}:${port}; refusing to connect (pin it at registration, or run the host-key check)`);
  }
}

/** Why a connection could not be made or was lost. */
export type SshConnectErrorKind =
  | "refused" // ECONNREFUSED
  | "unreachable" // EHOSTUNREACH, ENETUNREACH, ENOTFOUND, ECONNRESET before the handshake, …
  | "timeout" // TCP connect + handshake + auth took longer than connectTimeoutMs, or keepalive gave up
  | "auth" // the server refused the private key
  | "key" // the private key could not be parsed/decrypted (wrong passphrase, unsupported format)
  | "forward" // the jump host refused to forward to the target
  | "channel" // the server refused to open a session channel
  | "closed" // the connection closed (before it was ready, or while a command ran)
  | "protocol"; // anything else from the SSH layer

export class SshConnectError extends Error {
  override readonly name = "SshConnectError";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly kind: SshConnectErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A command (or SFTP transfer) ran past its time limit; its channel was signalled (TERM) and closed. */
export class SshTimeoutError extends Error {
  override readonly name = "SshTimeoutError";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeoutMs: number,
    what = "command",
  ) {
    super(`${what} on ${host}:${port} timed out after ${timeoutMs} ms`);
  }
}

/** An SFTP operation failed. `code` is the SFTP status (2 = no such file, 3 = permission denied, 4 = failure). */
export class SftpError extends Error {
  override readonly name = "SftpError";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly path: string,
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
  get notFound(): boolean {
    return this.code === 2;
  }
}
