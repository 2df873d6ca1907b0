/**
 * Inter-node SSH for Horovod/MPI jobs: horovodrun and mpirun start the remote ranks over SSH from
 * the head node. Trainyard gives every attempt its own key pair: the public key is authorised on
 * each node of the gang for that attempt only (marked `trainyard-attempt=<attemptId>`), the private
 * key, an ssh config and a known_hosts built from the host keys Trainyard has pinned live in the head
 * node's attempt directory, and all of it is removed when the attempt ends. Host keys are always
 * checked (StrictHostKeyChecking yes) — never `no`, which Horovod itself passes to ssh.
 *
 * Everything here is pure text; key generation and the SSH round trips live in @trainyard/core.
 */
import { randomBytes } from "node:crypto";
import { shellQuote } from "./shell";

/** Paths inside the head node's attempt directory. */
export const INTER_NODE_SSH = {
  dir: "ssh",
  config: "ssh/config",
  knownHosts: "ssh/known_hosts",
  privateKey: "ssh/id_ed25519",
  shim: "ssh/bin/ssh",
  shimDir: "ssh/bin",
} as const;

/** The comment that marks an attempt's key in authorized_keys; cleanup removes exactly these lines. */
export const attemptKeyMarker = (attemptId: string) => `trainyard-attempt=${checkId(attemptId)}`;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
function checkId(attemptId: string): string {
  if (!ID.test(attemptId)) throw new Error(`invalid attempt id ${JSON.stringify(attemptId)}`);
  return attemptId;
}
const SAFE_HOST = /^[A-Za-z0-9.:-]{1,253}$/;
const SAFE_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const SAFE_PATH = /^\/[A-Za-z0-9._+/-]*$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface SshPeer {
  host: string;
  port: number;
  user: string;
}

/**
 * The head node's ssh config for this attempt: one `Host` block per node (its own user and port;
 * the hostfile names hosts, so those are the aliases), then the attempt's key and known_hosts for
 * every host. Hosts not in known_hosts are refused.
 */
export function renderSshConfig(opts: { dir: string; attemptId: string; peers: SshPeer[] }): string {
  const { dir } = opts;
  if (!SAFE_PATH.test(dir)) throw new Error(`unsafe directory for an ssh config: ${JSON.stringify(dir)}`);
  const lines = [
    `# Trainyard: SSH between the nodes of attempt ${checkId(opts.attemptId)} (generated; removed when the attempt ends).`,
  ];
  for (const p of opts.peers) {
    if (!SAFE_HOST.test(p.host) || !SAFE_USER.test(p.user) || !Number.isInteger(p.port))
      throw new Error(`unsafe ssh peer ${JSON.stringify(p)}`);
    lines.push(`Host ${p.host}`, `  HostName ${p.host}`, `  User ${p.user}`, `  Port ${p.port}`);
  }
  lines.push(
    "Host *",
    `  IdentityFile ${dir}/${INTER_NODE_SSH.privateKey}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${dir}/${INTER_NODE_SSH.knownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  CheckHostIP no",
    "  HashKnownHosts no",
    "  UpdateHostKeys no",
    "  PasswordAuthentication no",
    "  KbdInteractiveAuthentication no",
    "  BatchMode yes",
    "  ForwardAgent no",
    "  ForwardX11 no",
    "  ConnectTimeout 20",
    "  ServerAliveInterval 15",
  );
  return `${lines.join("\n")}\n`;
}

/**
 * An `ssh` for the head's PATH: horovodrun runs plain `ssh -o StrictHostKeyChecking=no …`; ssh
 * keeps the first value it gets for an option, so this shim's `-F <config> -o
 * StrictHostKeyChecking=yes` come first and win.
 */
export function renderSshShim(dir: string): string {
  if (!SAFE_PATH.test(dir)) throw new Error(`unsafe directory for an ssh shim: ${JSON.stringify(dir)}`);
  const cfg = shellQuote(`${dir}/${INTER_NODE_SSH.config}`);
  return `#!/bin/sh
# Trainyard (generated): ssh with this attempt's config; host keys are always checked.
ty_ssh=$(PATH=/usr/bin:/bin:/usr/local/bin command -v ssh) || { echo "trainyard: no ssh client" >&2; exit 127; }
exec "$ty_ssh" -F ${cfg} -o StrictHostKeyChecking=yes -o BatchMode=yes "$@"
`;
}

/** Type name inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …). */
export function sshKeyType(blob: Buffer): string {
  if (blob.length < 4) throw new Error("truncated SSH key blob");
  const n = blob.readUInt32BE(0);
  if (n < 1 || n > 64 || blob.length < 4 + n) throw new Error("malformed SSH key blob");
  const type = blob.subarray(4, 4 + n).toString("latin1");
  if (!/^[a-z0-9@.-]+$/.test(type)) throw new Error("malformed SSH key type");
  return type;
}

/** A known_hosts line for a host key blob; `[host]:port` unless the port is 22. */
export function knownHostsLine(host: string, port: number, hostKeyBlob: Buffer): string {
  if (!SAFE_HOST.test(host)) throw new Error(`unsafe host ${JSON.stringify(host)}`);
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${sshKeyType(hostKeyBlob)} ${hostKeyBlob.toString("base64")}`;
}

/**
 * The authorized_keys line of an attempt's public key: `restrict` (no pty, forwarding or X11 —
 * launchers run plain commands) and the attempt marker as the comment.
 */
export function authorizedKeyLine(publicKeyLine: string, attemptId: string): string {
  const [type, blob] = publicKeyLine.trim().split(/\s+/);
  if (!type || !blob || !/^ssh-[a-z0-9-]+$/.test(type) || !B64.test(blob)) throw new Error("not an OpenSSH public key line");
  return `restrict ${type} ${blob} ${attemptKeyMarker(attemptId)}`;
}

/** Shared shell prelude: the account's authorized_keys, locked against concurrent edits by other attempts. */
const AUTH_PRELUDE = `umask 077
d="$HOME/.ssh"
f="$d/authorized_keys"
mkdir -p "$d" && chmod 700 "$d" || exit 1
exec 9>>"$d/.trainyard.lock"
if command -v flock >/dev/null 2>&1; then flock -w 30 9 || exit 1; fi
touch "$f" && chmod 600 "$f" || exit 1
`;

/** Remove every line carrying `marker` as its last field; prints "removed N". */
const removeMarked = (marker: string) => `n=$(awk -v m=${shellQuote(marker)} '$NF == m' "$f" | wc -l)
if [ "$n" -gt 0 ]; then
  awk -v m=${shellQuote(marker)} '$NF != m' "$f" >"$f.trainyard.$$" && cat "$f.trainyard.$$" >"$f"
  rm -f "$f.trainyard.$$"
fi
echo "removed $n"
`;

/** Authorises the attempt's public key for the node account (idempotent: replaces an earlier line of the same attempt). */
export function authorizeKeyCommand(authorizedLine: string, attemptId: string): string {
  const marker = attemptKeyMarker(attemptId);
  if (!authorizedLine.endsWith(` ${marker}`) || /[\n\r']/.test(authorizedLine))
    throw new Error("authorized_keys line without the attempt marker");
  return `/bin/sh -c ${shellQuote(`${AUTH_PRELUDE}${removeMarked(marker)}printf '%s\\n' ${shellQuote(authorizedLine)} >>"$f"\n`)}`;
}

/**
 * Removes the attempt's key from the node account's authorized_keys and, on the head node, the
 * attempt's ssh directory (private key, config, known_hosts). Prints "removed N".
 */
export function revokeKeyCommand(attemptId: string, headDir?: string): string {
  const marker = attemptKeyMarker(attemptId);
  let rm = "";
  if (headDir !== undefined) {
    if (!SAFE_PATH.test(headDir)) throw new Error(`unsafe directory ${JSON.stringify(headDir)}`);
    rm = `rm -rf ${shellQuote(`${headDir}/${INTER_NODE_SSH.dir}`)}\n`;
  }
  return `/bin/sh -c ${shellQuote(`${rm}${AUTH_PRELUDE}${removeMarked(marker)}`)}`;
}

// ---------------------------------------------------------------------------------------------
// OpenSSH key encoding (ed25519)

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const sshString = (b: Buffer | string) => {
  const buf = typeof b === "string" ? Buffer.from(b, "latin1") : b;
  return Buffer.concat([u32(buf.length), buf]);
};

/** The SSH wire blob of an ed25519 public key (32 raw bytes). */
export function ed25519PublicBlob(publicKey: Buffer): Buffer {
  if (publicKey.length !== 32) throw new Error("ed25519 public keys are 32 bytes");
  return Buffer.concat([sshString("ssh-ed25519"), sshString(publicKey)]);
}

/** `ssh-ed25519 AAAA… comment` */
export function ed25519PublicKeyLine(publicKey: Buffer, comment: string): string {
  if (/[\s]/.test(comment)) throw new Error("key comments must not contain whitespace");
  return `ssh-ed25519 ${ed25519PublicBlob(publicKey).toString("base64")} ${comment}`;
}

/**
 * An unencrypted OpenSSH private key ("openssh-key-v1", as `ssh-keygen -t ed25519 -N ''` writes)
 * from the raw 32-byte seed and public key. `checkInt` is random unless given (tests).
 */
export function ed25519OpenSshPrivateKey(seed: Buffer, publicKey: Buffer, comment: string, checkInt?: number): string {
  if (seed.length !== 32) throw new Error("ed25519 seeds are 32 bytes");
  const pub = ed25519PublicBlob(publicKey);
  const check = checkInt ?? randomBytes(4).readUInt32BE(0);
  let priv = Buffer.concat([
    u32(check),
    u32(check),
    sshString("ssh-ed25519"),
    sshString(publicKey),
    sshString(Buffer.concat([seed, publicKey])),
    sshString(comment),
  ]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    u32(1),
    sshString(pub),
    sshString(priv),
  ]);
  const b64 = body
    .toString("base64")
    .replace(/(.{70})/g, "$1\n")
    .replace(/\n$/, "");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
