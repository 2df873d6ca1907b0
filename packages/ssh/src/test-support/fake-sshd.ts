/**
 * Test-only: an in-process ssh2.Server on 127.0.0.1 with a tiny command interpreter, public-key auth,
 * direct-tcpip forwarding (to act as a jump host) and counters the tests assert on.
 *
 * Commands: `echo TEXT`, `err TEXT` (to stderr), `exit N`, `sleep MS`, `cat` (stdin back at EOF),
 * `big N` (N bytes of "x"), `ticks N MS` (N lines, one every MS), `whoami`.
 */
import { timingSafeEqual } from "node:crypto";
import { type AddressInfo, connect as netConnect } from "node:net";
import type { ParsedKey, ServerChannel, Connection as ServerConnection } from "ssh2";
import ssh2 from "ssh2";
import { fingerprintOfPublicKey } from "../fingerprint";

const { Server, utils } = ssh2;

export interface KeyPair {
  private: string;
  public: string;
}

/**
 * An ed25519 key pair in OpenSSH format. ssh2 1.17.0's generateKeyPairSync("ed25519") drops a leading
 * zero byte of the public key (about 1 key in 256), writing a key its own parser then rejects
 * ("Malformed OpenSSH private key"); such keys are skipped. Encrypted keys use 2 bcrypt rounds (ssh2's
 * pure-JS bcrypt-pbkdf takes ~0.7 s per parse at the default 16).
 */
export function generateKey(passphrase?: string): KeyPair {
  for (;;) {
    const kp = passphrase
      ? utils.generateKeyPairSync("ed25519", { passphrase, cipher: "aes256-ctr", rounds: 2 })
      : utils.generateKeyPairSync("ed25519");
    const blob = Buffer.from(kp.public.split(" ")[1] ?? "", "base64");
    if (blob.length === 51 && !(utils.parseKey(kp.private, passphrase) instanceof Error))
      return { private: kp.private, public: kp.public };
  }
}

export interface FakeSshdOptions {
  hostKey?: KeyPair;
  /** Public keys (OpenSSH lines) allowed to log in, for any user. */
  authorizedKeys: string[];
}

export class FakeSshd {
  readonly host = "127.0.0.1";
  port = 0;
  readonly hostKey: KeyPair;
  readonly hostKeyFingerprint: string;
  /** TCP connections accepted. */
  connections = 0;
  /** Successful authentications. */
  authenticated = 0;
  /** Authentication requests of any kind. */
  authRequests = 0;
  execs: string[] = [];
  signals: string[] = [];
  /** Largest number of sessions open at once on one connection. */
  maxOpenSessions = 0;
  /** Sessions closed by the client before the command ended. */
  abortedCommands = 0;
  tcpipRequests: Array<{ destIP: string; destPort: number }> = [];
  readonly clients = new Set<ServerConnection>();
  private readonly server: InstanceType<typeof Server>;
  private readonly allowed: ParsedKey[];

  private constructor(opts: FakeSshdOptions) {
    this.hostKey = opts.hostKey ?? generateKey();
    this.hostKeyFingerprint = fingerprintOfPublicKey(this.hostKey.public);
    this.allowed = opts.authorizedKeys.map((k) => {
      const parsed = utils.parseKey(k);
      if (parsed instanceof Error) throw parsed;
      return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    });
    // ssh2's Server only emits 'signal' for requests that arrive before exec starts; its protocol debug
    // output shows every signal request, so signals are counted from there.
    const debug = (line: string) => {
      const m = /CHANNEL_REQUEST \(r:\d+, signal: (\w+)\)/.exec(line);
      if (m?.[1]) this.signals.push(m[1]);
    };
    this.server = new Server({ hostKeys: [this.hostKey.private], debug }, (client) => this.onClient(client));
  }

  static async start(opts: FakeSshdOptions): Promise<FakeSshd> {
    const s = new FakeSshd(opts);
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", () => resolve()));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  /** Ends every client connection from the server side. */
  dropAll(): void {
    for (const c of this.clients) c.end();
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.end();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onClient(client: ServerConnection): void {
    this.connections++;
    this.clients.add(client);
    let open = 0;
    let user = "";
    client.on("error", () => {});
    client.on("close", () => this.clients.delete(client));
    client.on("authentication", (ctx) => {
      this.authRequests++;
      user = ctx.username;
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      const k = this.allowed.find((a) => {
        const pub = a.getPublicSSH();
        return a.type === ctx.key.algo && pub.length === ctx.key.data.length && timingSafeEqual(pub, ctx.key.data);
      });
      if (!k) return ctx.reject(["publickey"]);
      if (ctx.signature && ctx.blob) {
        if (!k.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(["publickey"]);
        this.authenticated++;
      }
      ctx.accept();
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        open++;
        this.maxOpenSessions = Math.max(this.maxOpenSessions, open);
        session.on("close", () => open--);
        session.on("exec", (accept, _reject, info) => {
          this.execs.push(info.command);
          const ch = accept();
          this.run(ch, info.command, user);
        });
      });
      client.on("tcpip", (accept, reject, info) => {
        this.tcpipRequests.push({ destIP: info.destIP, destPort: info.destPort });
        const sock = netConnect(info.destPort, info.destIP);
        sock.once("error", () => reject?.());
        sock.once("connect", () => {
          const ch = accept();
          ch.on("error", () => {});
          sock.on("error", () => ch.destroy());
          ch.pipe(sock).pipe(ch);
        });
      });
    });
  }

  /** Runs one fake command. */
  private run(ch: ServerChannel, command: string, user: string): void {
    const [cmd = "", ...rest] = command.split(" ");
    const arg = rest.join(" ");
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (code: number) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      if (ch.writable) {
        ch.exit(code);
        ch.end();
      }
    };
    ch.on("close", () => {
      if (!done) this.abortedCommands++;
      done = true;
      for (const t of timers) clearTimeout(t);
    });
    ch.on("error", () => {});
    const stdin: Buffer[] = [];
    ch.on("data", (b: Buffer) => stdin.push(b));
    switch (cmd) {
      case "echo":
        ch.write(`${arg}\n`);
        finish(0);
        break;
      case "err":
        ch.stderr.write(`${arg}\n`);
        finish(0);
        break;
      case "exit":
        finish(Number(arg));
        break;
      case "whoami":
        ch.write(`${user}\n`);
        finish(0);
        break;
      case "sleep":
        timers.push(setTimeout(() => finish(0), Number(arg)));
        break;
      case "cat":
        ch.on("end", () => {
          ch.write(Buffer.concat(stdin));
          finish(0);
        });
        break;
      case "big":
        ch.write(Buffer.alloc(Number(arg), "x"));
        finish(0);
        break;
      case "ticks": {
        const [n = "3", ms = "20"] = rest;
        for (let i = 0; i < Number(n); i++) timers.push(setTimeout(() => ch.write(`tick ${i}\n`), Number(ms) * (i + 1)));
        timers.push(setTimeout(() => finish(0), Number(ms) * (Number(n) + 1)));
        break;
      }
      default:
        ch.stderr.write(`unknown command: ${cmd}\n`);
        finish(127);
    }
  }
}
