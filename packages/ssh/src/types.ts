/** An SSH server Trainyard talks to. */
export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** Pinned host key fingerprint, "SHA256:<base64 without padding>" exactly as `ssh-keygen -lf` prints it. Required. */
  hostKeyFingerprint?: string;
}

/** A node, optionally reached through a jump host (which is verified with its own pin; same credentials). */
export interface SshTarget extends SshEndpoint {
  jumpHost?: SshEndpoint;
}

export interface SshCredentials {
  /** OpenSSH or PEM private key text. Never logged, never put in an error message. */
  privateKey: string;
  passphrase?: string;
}

export interface ExecResult {
  /** Exit status, or null when the command was killed by a signal (or the channel closed without a status). */
  code: number | null;
  /** Signal that ended the command, as ssh2 reports it ("SIGTERM", "SIGKILL", …). */
  signal?: string;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr was longer than maxOutputBytes and was cut. */
  truncated: boolean;
}

export interface ExecOptions {
  /** Limit for the whole call (waiting for a connection and a channel included). Default: the pool's commandTimeoutMs. 0 = none. */
  timeoutMs?: number;
  /** Written to the command's stdin, then EOF (a stream is piped, with backpressure). Without it the command gets EOF at once. */
  stdin?: string | Buffer | NodeJS.ReadableStream;
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
  /** Bytes kept per stream (stdout, stderr) in the result; the callbacks still see everything. Default 1 MiB. */
  maxOutputBytes?: number;
  signal?: AbortSignal;
}

export interface StreamHandlers {
  /** stdout of the command. */
  onData(chunk: Buffer): void;
  /** stderr of the command; dropped when absent. */
  onStderr?(chunk: Buffer): void;
  /** Called once when the command ends or the handle was closed (code null then, unless the exit status arrived first). */
  onEnd?(code: number | null, signal?: string): void;
  /** Called once, instead of onEnd, when the connection is lost while streaming (onEnd(null) when absent). */
  onError?(e: Error): void;
}

export interface StreamHandle {
  /** Signals the remote command (TERM) and closes the channel. Idempotent. */
  close(): void;
}

export interface StreamOptions {
  /** Limit for opening the stream (connect + channel), not for how long it runs. Default: the pool's commandTimeoutMs. */
  openTimeoutMs?: number;
  /** Aborting closes the stream like close(). */
  signal?: AbortSignal;
}

export interface UploadFile {
  /** Remote path (absolute, or relative to the login directory). Parent directories are created. */
  path: string;
  content: string | Buffer;
  /** File mode, applied with an explicit chmod (so the remote umask does not matter). */
  mode?: number;
}

export interface TransferOptions {
  /** Default: the pool's commandTimeoutMs. 0 = none. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The part of a pino logger the pool uses. */
export interface SshLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SshPoolOptions {
  /** TCP connect + SSH handshake + authentication (ssh2 readyTimeout). Default 15 000. */
  connectTimeoutMs?: number;
  /** SSH-level keepalive interval (ssh2 keepaliveInterval). Default 15 000; 0 disables. */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection is declared dead (ssh2 keepaliveCountMax). Default 3. */
  keepaliveCountMax?: number;
  /** An unused connection is closed after this long. Default 60 000. */
  idleTimeoutMs?: number;
  /** Default limit for exec/upload/download (and for opening a stream). Default 300 000; 0 = none. */
  commandTimeoutMs?: number;
  /** Session channels (exec, stream, sftp) open at once per connection; more wait in a queue. Default 8 (sshd MaxSessions is 10). */
  maxChannelsPerConnection?: number;
  logger?: SshLogger;
}
