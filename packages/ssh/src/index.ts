export {
  HostKeyMismatchError,
  HostKeyNotPinnedError,
  SftpError,
  SshConnectError,
  type SshConnectErrorKind,
  SshTimeoutError,
} from "./errors";
export { fingerprintOf, fingerprintOfPublicKey, fingerprintsEqual, normalizeFingerprint } from "./fingerprint";
export { SshPool } from "./pool";
export { scanHostKey } from "./scan";
export type {
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
