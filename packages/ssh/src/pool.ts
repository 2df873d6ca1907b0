import { Socket } from "node:net";
import type { ClientChannel, SFTPWrapper, Client as SshClient } from "ssh2";
import { credsKey, requirePin, targetKey, validateTarget } from "./endpoints";
import { SshConnectError, SshTimeoutError } from "./errors";
import { type HandshakeContext, handshake } from "./handshake";
import { Collector, type Connection, Deadline, killChannel, label, noopLogger, scrub } from "./internal";
import { PrivateKeyCache } from "./private-keys";
import { sftpDownload, sftpUpload } from "./sftp";
import type {
  ExecOptions,
  ExecResult,
  SshCredentials,
  SshEndpoint,
  SshLogger,
  SshPoolOptions,
  SshTarget,
  StreamHandle,
  StreamHandlers,
  StreamOptions,
  TransferOptions,
  UploadFile,
} from "./types";

const DEFAULTS = {
  connectTimeoutMs: 15_000,
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  idleTimeoutMs: 60_000,
  commandTimeoutMs: 300_000,
  maxChannelsPerConnection: 8,
};
const DEFAULT_MAX_OUTPUT = 1024 * 1024;
const DEFAULT_MAX_DOWNLOAD = 16 * 1024 * 1024;

interface Entry {
  promise: Promise<Connection>;
  conn?: Connection;
  endpointKey: string;
}

export class SshPool {
  private readonly o: Required<Omit<SshPoolOptions, "logger">>;
  private readonly log: SshLogger;
  private readonly entries = new Map<string, Entry>();
  /** Every live connection, cached or draining, for close(). */
  private readonly live = new Set<Connection>();
  /** Connections still being set up (client + socket), for close(). */
  private readonly connecting = new Set<SshClient>();
  private readonly keys = new PrivateKeyCache();
  /** Host key blobs that matched their pin, by "host:port" (for known_hosts files Trainyard writes). */
  private readonly verifiedKeys = new Map<string, Buffer>();
  private closed = false;
  /** What each handshake reads and records of this pool. */
  private readonly handshakes: HandshakeContext;

  constructor(opts: SshPoolOptions = {}) {
    this.o = {
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? DEFAULTS.keepaliveIntervalMs,
      keepaliveCountMax: opts.keepaliveCountMax ?? DEFAULTS.keepaliveCountMax,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      commandTimeoutMs: opts.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
      maxChannelsPerConnection: Math.max(1, opts.maxChannelsPerConnection ?? DEFAULTS.maxChannelsPerConnection),
    };
    this.log = opts.logger ?? noopLogger;
    this.handshakes = { options: this.o, log: this.log, connecting: this.connecting, verifiedKeys: this.verifiedKeys };
  }

  /** Number of cached connections (connected or connecting). */
  get size(): number {
    return this.entries.size;
  }

  // ------------------------------------------------------------------------------------------ exec

  async exec(target: SshTarget, creds: SshCredentials, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.assertOpen();
    validateTarget(target);
    const timeoutMs = opts.timeoutMs ?? this.o.commandTimeoutMs;
    const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const dl = new Deadline(opts.signal, timeoutMs, () => new SshTimeoutError(target.host, target.port, timeoutMs));
    try {
      const { conn, channel } = await this.openSession<ClientChannel>(target, creds, dl, (c, cb) => c.exec(command, cb));
      return await new Promise<ExecResult>((resolve, reject) => {
        const out = new Collector(max);
        const err = new Collector(max);
        let code: number | null = null;
        let signal: string | undefined;
        let gotExit = false;
        channel.on("data", (b: Buffer) => {
          out.push(b);
          this.callSafely(opts.onStdout, b);
        });
        channel.stderr.on("data", (b: Buffer) => {
          err.push(b);
          this.callSafely(opts.onStderr, b);
        });
        channel.on("exit", (c: number | null, s?: string) => {
          gotExit = true;
          code = typeof c === "number" ? c : null;
          signal = s ?? undefined;
        });
        channel.on("error", (e: Error) => this.log.debug({ ssh: conn.where, err: scrub(e.message) }, "ssh channel error"));
        const offAbort = dl.onAbort(() => {
          killChannel(channel);
          reject(dl.reason);
        });
        channel.on("close", (c?: number | null, s?: string) => {
          offAbort();
          // The exit status may have arrived before our 'exit' listener was attached (same TCP read as
          // the exec reply); ssh2 repeats it as the arguments of 'close'.
          if (!gotExit && (typeof c === "number" || typeof s === "string")) {
            gotExit = true;
            code = typeof c === "number" ? c : null;
            signal = s;
          }
          if (dl.aborted) return reject(dl.reason);
          if (!gotExit && conn.closed) return reject(conn.lostError());
          const r: ExecResult = { code, stdout: out.text(), stderr: err.text(), truncated: out.truncated || err.truncated };
          if (signal) r.signal = signal;
          resolve(r);
        });
        if (typeof opts.stdin === "string" || Buffer.isBuffer(opts.stdin)) channel.end(opts.stdin);
        else if (opts.stdin !== undefined) {
          const source = opts.stdin;
          source.on("error", (e: Error) => {
            killChannel(channel);
            reject(e);
          });
          source.pipe(channel);
        } else channel.end();
      });
    } finally {
      dl.dispose();
    }
  }

  // ---------------------------------------------------------------------------------------- stream

  async stream(
    target: SshTarget,
    creds: SshCredentials,
    command: string,
    handlers: StreamHandlers,
    opts: StreamOptions = {},
  ): Promise<StreamHandle> {
    this.assertOpen();
    validateTarget(target);
    const openMs = opts.openTimeoutMs ?? this.o.commandTimeoutMs;
    const dl = new Deadline(opts.signal, openMs, () => new SshTimeoutError(target.host, target.port, openMs, "opening a stream"));
    let opened: { conn: Connection; channel: ClientChannel };
    try {
      opened = await this.openSession<ClientChannel>(target, creds, dl, (c, cb) => c.exec(command, cb));
    } finally {
      dl.dispose();
    }
    const { conn, channel } = opened;
    let finished = false;
    let closedByUs = false;
    let gotExit = false;
    let code: number | null = null;
    let signal: string | undefined;
    let offUserAbort: (() => void) | undefined;
    const close = () => {
      if (finished || closedByUs) return;
      closedByUs = true;
      killChannel(channel);
    };
    channel.on("data", (b: Buffer) => this.callSafely(handlers.onData, b));
    channel.stderr.on("data", (b: Buffer) => this.callSafely(handlers.onStderr, b));
    channel.on("exit", (c: number | null, s?: string) => {
      gotExit = true;
      code = typeof c === "number" ? c : null;
      signal = s ?? undefined;
    });
    channel.on("error", (e: Error) => this.log.debug({ ssh: conn.where, err: scrub(e.message) }, "ssh channel error"));
    channel.on("close", (c?: number | null, s?: string) => {
      if (finished) return;
      finished = true;
      if (!gotExit && (typeof c === "number" || typeof s === "string")) {
        gotExit = true;
        code = typeof c === "number" ? c : null;
        signal = s;
      }
      offUserAbort?.();
      if (!gotExit && !closedByUs && conn.closed && handlers.onError) {
        this.callSafely(handlers.onError, conn.lostError());
        return;
      }
      try {
        handlers.onEnd?.(code, signal);
      } catch (e) {
        this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "ssh stream onEnd handler threw");
      }
    });
    channel.end();
    if (opts.signal) {
      const s = opts.signal;
      if (s.aborted) close();
      else {
        s.addEventListener("abort", close, { once: true });
        offUserAbort = () => s.removeEventListener("abort", close);
      }
    }
    return { close };
  }

  // ------------------------------------------------------------------------------------------ sftp

  async upload(target: SshTarget, creds: SshCredentials, files: UploadFile[], opts: TransferOptions = {}): Promise<void> {
    this.assertOpen();
    validateTarget(target);
    const timeoutMs = opts.timeoutMs ?? this.o.commandTimeoutMs;
    const dl = new Deadline(
      opts.signal,
      timeoutMs,
      () => new SshTimeoutError(target.host, target.port, timeoutMs, "SFTP upload"),
    );
    try {
      const { channel: sftp } = await this.openSession<SFTPWrapper>(target, creds, dl, (c, cb) => c.sftp(cb));
      try {
        const work = sftpUpload(sftp, target, files);
        work.catch(() => {});
        await dl.race(work);
      } finally {
        sftp.end();
      }
    } finally {
      dl.dispose();
    }
  }

  async download(
    target: SshTarget,
    creds: SshCredentials,
    remotePath: string,
    maxBytes = DEFAULT_MAX_DOWNLOAD,
    opts: TransferOptions = {},
  ): Promise<Buffer> {
    this.assertOpen();
    validateTarget(target);
    const timeoutMs = opts.timeoutMs ?? this.o.commandTimeoutMs;
    const dl = new Deadline(
      opts.signal,
      timeoutMs,
      () => new SshTimeoutError(target.host, target.port, timeoutMs, "SFTP download"),
    );
    try {
      const { channel: sftp } = await this.openSession<SFTPWrapper>(target, creds, dl, (c, cb) => c.sftp(cb));
      try {
        const work = sftpDownload(sftp, target, remotePath, maxBytes);
        work.catch(() => {});
        return await dl.race(work);
      } finally {
        sftp.end();
      }
    } finally {
      dl.dispose();
    }
  }

  // ------------------------------------------------------------------------------------ lifecycle

  /**
   * Drops the cached connection(s) to a target (any credentials): new calls connect afresh; the old
   * connection is closed once the commands running on it have finished.
   */
  /**
   * The public host key (SSH wire blob) an endpoint presented on the last connection, which
   * matched its pinned fingerprint; undefined if no connection to it has been verified yet.
   */
  verifiedHostKey(endpoint: { host: string; port: number }): Buffer | undefined {
    return this.verifiedKeys.get(`${endpoint.host}:${endpoint.port}`);
  }

  evict(target: SshTarget): void {
    const ek = targetKey(target);
    for (const [key, entry] of this.entries) {
      if (entry.endpointKey !== ek) continue;
      this.entries.delete(key);
      if (entry.conn) entry.conn.drain();
      else
        entry.promise.then(
          (c) => c.drain(),
          () => {},
        );
    }
  }

  /** Ends every connection (running commands fail with SshConnectError); later calls reject. */
  async close(): Promise<void> {
    this.closed = true;
    this.keys.clear();
    const pending = [...this.entries.values()].map((e) => e.promise.catch(() => undefined));
    this.entries.clear();
    for (const c of this.connecting) {
      try {
        c.destroy();
      } catch {
        // ignore
      }
    }
    await Promise.all(pending);
    const conns = [...this.live];
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.closed) return resolve();
            c.onClose(resolve);
            c.end("pool closed");
            const t = setTimeout(() => {
              c.destroy();
              resolve();
            }, 2_000);
            t.unref();
          }),
      ),
    );
  }

  // ------------------------------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new Error("SshPool is closed");
  }

  private callSafely<A extends unknown[]>(fn: ((...a: A) => void) | undefined, ...args: A): void {
    if (!fn) return;
    try {
      fn(...args);
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "ssh output handler threw");
    }
  }

  /**
   * A session channel on a pooled connection, with a slot taken from the connection's limit; the slot is
   * given back when the channel closes. A channel open that fails because the connection had died is
   * retried once on a fresh connection (nothing ran on the dead one).
   */
  private async openSession<T extends ClientChannel | SFTPWrapper>(
    target: SshTarget,
    creds: SshCredentials,
    dl: Deadline,
    open: (client: SshClient, cb: (err: Error | undefined, ch: T) => void) => void,
  ): Promise<{ conn: Connection; channel: T }> {
    for (let attempt = 0; ; attempt++) {
      const conn = await dl.race(this.getConnection(target, creds));
      try {
        await conn.acquire(dl.signal);
      } catch (e) {
        if (conn.closed && !dl.aborted && attempt === 0) continue;
        throw e;
      }
      let abandoned = false;
      const chP = new Promise<T>((resolve, reject) => {
        try {
          open(conn.client, (err, ch) => (err ? reject(err) : resolve(ch)));
        } catch (e) {
          reject(e);
        }
      });
      chP.then(
        (ch) => {
          let released = false;
          ch.once("close", () => {
            if (released) return;
            released = true;
            conn.release();
          });
          if (abandoned) {
            if ("signal" in ch) killChannel(ch as ClientChannel);
            else (ch as SFTPWrapper).end();
          }
        },
        () => conn.release(),
      );
      try {
        const channel = await dl.race(chP);
        return { conn, channel };
      } catch (e) {
        if (dl.aborted) {
          abandoned = true;
          throw dl.reason;
        }
        if (conn.closed && attempt === 0) {
          this.log.debug({ ssh: conn.where }, "ssh connection died before the channel opened; reconnecting");
          continue;
        }
        if (conn.closed) throw conn.lostError();
        const msg = e instanceof Error ? e.message : String(e);
        throw new SshConnectError(
          target.host,
          target.port,
          "channel",
          `${conn.where} refused a session channel: ${scrub(msg, creds)}`,
        );
      }
    }
  }

  /** The pooled connection for a target; concurrent callers share one connect. */
  private getConnection(target: SshTarget, creds: SshCredentials): Promise<Connection> {
    this.assertOpen();
    const ek = targetKey(target);
    const key = `${ek}#${credsKey(creds)}`;
    const cur = this.entries.get(key);
    if (cur && !cur.conn?.closed) return cur.promise;
    if (cur) this.entries.delete(key);
    const entry: Entry = { promise: this.connect(target, creds, key, ek), endpointKey: ek };
    this.entries.set(key, entry);
    entry.promise.then(
      (conn) => {
        entry.conn = conn;
        this.live.add(conn);
        conn.onClose(() => {
          this.live.delete(conn);
          if (this.entries.get(key) === entry) this.entries.delete(key);
        });
        if (this.closed) conn.end("pool closed");
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.promise;
  }

  private async connect(target: SshTarget, creds: SshCredentials, cacheKey: string, ek: string): Promise<Connection> {
    const ep: SshEndpoint = {
      host: target.host,
      port: target.port,
      user: target.user,
      hostKeyFingerprint: target.hostKeyFingerprint,
    };
    const pinned = requirePin(ep);
    const where = label(ep) + (target.jumpHost ? ` via ${label(target.jumpHost)}` : "");
    const key = this.keys.get(creds, ep, where);
    if (!target.jumpHost) {
      const socket = new Socket();
      socket.setNoDelay(true);
      socket.connect({ host: ep.host, port: ep.port });
      return handshake(this.handshakes, ep, pinned, creds, key, socket, cacheKey, ek, { socket });
    }
    const jumpEp: SshEndpoint = { ...target.jumpHost };
    const jump = await this.getConnection(jumpEp, creds);
    jump.hold(); // kept while this connection is being set up
    let holding = true;
    const unhold = () => {
      if (holding) {
        holding = false;
        jump.unhold();
      }
    };
    let tunnel: ClientChannel;
    try {
      tunnel = await new Promise<ClientChannel>((resolve, reject) => {
        try {
          jump.client.forwardOut("127.0.0.1", 0, ep.host, ep.port, (err, ch) => (err ? reject(err) : resolve(ch)));
        } catch (e) {
          reject(e);
        }
      });
    } catch (e) {
      unhold();
      if (jump.closed) throw jump.lostError();
      const msg = e instanceof Error ? e.message : String(e);
      throw new SshConnectError(
        ep.host,
        ep.port,
        "forward",
        `jump host ${label(jumpEp)} could not forward to ${ep.host}:${ep.port}: ${scrub(msg, creds)}` +
          (/prohibited/i.test(msg) ? " (is AllowTcpForwarding disabled on the jump host?)" : ""),
      );
    }
    try {
      const conn = await handshake(this.handshakes, ep, pinned, creds, key, tunnel, cacheKey, ek, {
        via: jumpEp,
        onBusyChange: (busy) => {
          if (busy && !holding) {
            holding = true;
            jump.hold();
          } else if (!busy) unhold();
        },
      });
      conn.onClose(unhold);
      return conn;
    } catch (e) {
      unhold();
      try {
        tunnel.close();
      } catch {
        // ignore
      }
      throw e;
    }
  }
}
