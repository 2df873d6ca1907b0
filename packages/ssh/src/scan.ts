import { Socket } from "node:net";
import ssh2 from "ssh2";
import { SshConnectError } from "./errors";
import { fingerprintOf } from "./fingerprint";

const { Client } = ssh2;

/**
 * For trust-on-first-use checks: connects, completes the key exchange (so the server has proven it
 * holds the host key's private half), captures the host key's SHA256 fingerprint and disconnects
 * before any authentication request is sent.
 */
export function scanHostKey(endpoint: { host: string; port: number }, timeoutMs = 10_000): Promise<string> {
  const { host, port } = endpoint;
  return new Promise<string>((resolve, reject) => {
    const client = new Client();
    const socket = new Socket();
    let seen: string | undefined;
    let settled = false;
    const finish = (err: Error | undefined, fp?: string) => {
      if (settled) return;
      settled = true;
      try {
        client.end();
      } catch {
        // ignore
      }
      socket.destroy();
      if (err) reject(err);
      else resolve(fp as string);
    };
    client.on("handshake", () => finish(undefined, seen));
    client.on("error", (err: Error & { code?: string; level?: string }) => {
      const kind =
        err.code === "ECONNREFUSED"
          ? "refused"
          : err.level === "client-timeout" || err.code === "ETIMEDOUT"
            ? "timeout"
            : "unreachable";
      finish(new SshConnectError(host, port, kind, `host key scan of ${host}:${port} failed: ${err.message}`, { cause: err }));
    });
    client.on("close", () =>
      finish(
        new SshConnectError(
          host,
          port,
          "closed",
          `host key scan of ${host}:${port}: connection closed before the key exchange finished`,
        ),
      ),
    );
    socket.connect({ host, port });
    client.connect({
      sock: socket,
      username: "trainyard-hostkey-scan",
      readyTimeout: timeoutMs,
      // never authenticate: the connection is ended on 'handshake', before the userauth service is accepted
      authHandler: () => false,
      hostVerifier: (key: Buffer): boolean => {
        seen = fingerprintOf(key);
        return true;
      },
    });
  });
}
