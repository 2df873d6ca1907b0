import type { Socket } from "node:net";
import type { Client, ClientChannel } from "ssh2";
import { SshConnectError } from "./errors";
import type { SshCredentials, SshEndpoint, SshLogger } from "./types";

export const noopLogger: SshLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function label(ep: { user?: string; host: string; port: number }): string {
  return `${ep.user ? `${ep.user}@` : ""}${ep.host}:${ep.port}`;
}

/**
 * Removes anything secret from a message that came from elsewhere (ssh2, the socket layer): the passphrase,
 * any line of the private key, and long base64 runs.
 */
export function scrub(message: string, creds?: SshCredentials): string {
  let out = message;
  if (creds?.passphrase && creds.passphrase.length >= 1) out = out.split(creds.passphrase).join("[redacted]");
  if (creds?.privateKey) {
    for (const line of creds.privateKey.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= 16 && !l.startsWith("-----")) out = out.split(l).join("[redacted]");
    }
  }
  return out.replace(/[A-Za-z0-9+/=]{40,}/g, "[redacted]");
}

/** An abort reason that is always an Error. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error("operation aborted");
  e.name = "AbortError";
  return e;
}

/** One operation's time limit and caller's AbortSignal, folded into one internal signal. */
export class Deadline {
  private readonly ctl = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private unlink: (() => void) | undefined;

  constructor(user: AbortSignal | undefined, timeoutMs: number | undefined, onTimeout: () => Error) {
    if (user) {
      if (user.aborted) this.ctl.abort(abortReason(user));
      else {
        const f = () => this.ctl.abort(abortReason(user));
        user.addEventListener("abort", f, { once: true });
        this.unlink = () => user.removeEventListener("abort", f);
      }
    }
    if (!this.ctl.signal.aborted && timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.ctl.abort(onTimeout()), timeoutMs);
      this.timer.unref();
    }
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  get aborted(): boolean {
    return this.ctl.signal.aborted;
  }

  get reason(): Error {
    return this.ctl.signal.reason as Error;
  }

  /** Calls fn once when aborted (at once if already). Returns an unsubscribe function. */
  onAbort(fn: () => void): () => void {
    if (this.aborted) {
      fn();
      return () => {};
    }
    this.ctl.signal.addEventListener("abort", fn, { once: true });
    return () => this.ctl.signal.removeEventListener("abort", fn);
  }

  /** p, or a rejection with the abort reason if aborted first. */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.aborted) {
      p.catch(() => {});
      return Promise.reject(this.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const off = this.onAbort(() => reject(this.reason));
      p.then(
        (v) => {
          off();
          resolve(v);
        },
        (e: unknown) => {
          off();
          reject(e);
        },
      );
    });
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unlink?.();
    this.unlink = undefined;
  }
}

/** Bounded capture of one output stream. */
export class Collector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    if (b.length === 0) return;
    const room = this.max - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    if (b.length > room) {
      this.chunks.push(Buffer.from(b.subarray(0, room)));
      this.size += room;
      this.truncated = true;
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
  }
  text(): string {
    return Buffer.concat(this.chunks, this.size).toString("utf8");
  }
}

/**
 * Sends a signal to the remote command. ssh2's Channel.signal() is a silent no-op once the channel's
 * write side has ended (after we sent EOF for stdin), although the SSH protocol allows the request then;
 * in that case the request goes out through the channel's protocol object directly.
 */
export function signalChannel(ch: ClientChannel, name: string): void {
  try {
    if (ch.writable) {
      ch.signal(name);
      return;
    }
    const c = ch as unknown as {
      outgoing?: { id?: number; state?: string };
      _client?: { _protocol?: { signal?: (id: number, name: string) => void } };
    };
    const out = c.outgoing;
    const proto = c._client?._protocol;
    if (
      out &&
      typeof out.id === "number" &&
      (out.state === "open" || out.state === "eof") &&
      typeof proto?.signal === "function"
    ) {
      proto.signal(out.id, name);
    }
  } catch {
    // best effort: the close that follows still ends the channel
  }
}

/** TERM to the remote command's process group (sshd uses killpg), then close the channel. */
export function killChannel(ch: ClientChannel): void {
  signalChannel(ch, "TERM");
  try {
    ch.close();
  } catch {
    // already closed
  }
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
  off?: () => void;
}

export interface ConnectionOptions {
  maxSessions: number;
  idleTimeoutMs: number;
  logger: SshLogger;
  /** The TCP socket when we own it (direct connection): unref'd while idle. */
  socket?: Socket;
  /** Endpoint of the jump host when connected through one (for messages). */
  via?: SshEndpoint;
  /** Busy/idle transitions (used to hold the jump host connection while this one is in use). */
  onBusyChange?: (busy: boolean) => void;
}

/**
 * One authenticated SSH connection in the pool: counts its session channels (queueing beyond
 * maxSessions), holds (forwarded channels of connections that use it as a jump host), and closes
 * itself after idleTimeoutMs without either.
 */
export class Connection {
  closed = false;
  private sessions = 0;
  private holds = 0;
  private busy = false;
  private draining = false;
  private readonly waiters: Waiter[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    readonly key: string,
    readonly endpointKey: string,
    readonly ep: SshEndpoint,
    readonly client: Client,
    private readonly opts: ConnectionOptions,
  ) {
    this.transition(false, true);
  }

  get where(): string {
    return label(this.ep) + (this.opts.via ? ` via ${label(this.opts.via)}` : "");
  }

  /** Waits for a free session slot. Rejects if the connection closes or the signal aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(this.lostError());
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.sessions < this.opts.maxSessions && this.waiters.length === 0) {
      this.sessions++;
      this.update();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      if (signal) {
        const f = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortReason(signal));
        };
        signal.addEventListener("abort", f, { once: true });
        w.off = () => signal.removeEventListener("abort", f);
      }
      this.waiters.push(w);
      this.opts.logger.debug({ ssh: this.where, queued: this.waiters.length }, "ssh channel open queued");
    });
  }

  release(): void {
    if (this.closed) return;
    const next = this.waiters.shift();
    if (next) {
      next.off?.();
      next.resolve(); // the slot passes on
      return;
    }
    this.sessions = Math.max(0, this.sessions - 1);
    this.update();
  }

  hold(): void {
    this.holds++;
    this.update();
  }

  unhold(): void {
    this.holds = Math.max(0, this.holds - 1);
    this.update();
  }

  /** Close as soon as nothing uses it (at once if idle). */
  drain(): void {
    this.draining = true;
    if (!this.busy) this.end("evicted");
  }

  end(why: string): void {
    if (this.closed) return;
    this.opts.logger.debug({ ssh: this.where, why }, "ssh connection closing");
    this.clearIdle();
    try {
      this.client.end();
    } catch {
      // ignore
    }
  }

  destroy(): void {
    try {
      this.client.destroy();
    } catch {
      // ignore
    }
  }

  noteError(err: Error): void {
    this.lastError = err;
  }

  /** Called when the ssh2 client emitted 'close'. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearIdle();
    const err = this.lostError();
    for (const w of this.waiters.splice(0)) {
      w.off?.();
      w.reject(err);
    }
    if (this.busy) {
      this.busy = false;
      this.opts.onBusyChange?.(false);
    }
    for (const fn of this.closeListeners.splice(0)) fn();
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  lostError(): SshConnectError {
    const cause = this.lastError ? `: ${scrub(this.lastError.message)}` : "";
    return new SshConnectError(this.ep.host, this.ep.port, "closed", `SSH connection to ${this.where} was closed${cause}`);
  }

  private update(): void {
    const busy = this.sessions + this.holds > 0;
    if (busy !== this.busy) this.transition(busy, false);
  }

  private transition(busy: boolean, initial: boolean): void {
    this.busy = busy;
    if (busy) {
      this.clearIdle();
      this.opts.socket?.ref();
    } else {
      this.opts.socket?.unref();
      if (this.draining) {
        this.end("evicted");
      } else if (!this.closed) {
        this.idleTimer = setTimeout(() => this.end("idle"), this.opts.idleTimeoutMs);
        this.idleTimer.unref();
      }
    }
    if (!initial || !busy) this.opts.onBusyChange?.(busy);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
