import { afterEach, describe, expect, it } from "vitest";
import { HostKeyMismatchError, HostKeyNotPinnedError, SshConnectError, SshTimeoutError } from "./errors";
import { SshPool } from "./pool";
import { scanHostKey } from "./scan";
import { FakeSshd, generateKey, type KeyPair } from "./test-support/fake-sshd";
import type { SshCredentials, SshPoolOptions, SshTarget } from "./types";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const OTHER_FP = "SHA256:CUzZdFEFWbhEEZ+JlQVipdjQIxdLjjQy0V8Io5+4+bA";

async function setup(poolOpts: SshPoolOptions = {}, key: KeyPair = generateKey()) {
  const server = await FakeSshd.start({ authorizedKeys: [key.public] });
  const pool = new SshPool({ connectTimeoutMs: 5_000, commandTimeoutMs: 10_000, ...poolOpts });
  cleanups.push(() => server.close());
  cleanups.push(() => pool.close());
  const target: SshTarget = {
    host: server.host,
    port: server.port,
    user: "alice",
    hostKeyFingerprint: server.hostKeyFingerprint,
  };
  const creds: SshCredentials = { privateKey: key.private };
  return { server, pool, target, creds, key };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("SshPool.exec", () => {
  it("returns stdout, stderr and the exit code", async () => {
    const { pool, target, creds, server } = await setup();
    await expect(pool.exec(target, creds, "echo hello world")).resolves.toEqual({
      code: 0,
      stdout: "hello world\n",
      stderr: "",
      truncated: false,
    });
    const err = await pool.exec(target, creds, "err oops");
    expect(err.stderr).toBe("oops\n");
    expect((await pool.exec(target, creds, "exit 3")).code).toBe(3);
    expect((await pool.exec(target, creds, "whoami")).stdout).toBe("alice\n");
    expect(server.execs).toEqual(["echo hello world", "err oops", "exit 3", "whoami"]);
  });

  it("never loses the exit status of a command that ends at once", async () => {
    // ssh2 can emit 'exit' in the same read as the exec reply, before a listener is attached
    const { pool, target, creds } = await setup();
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.exec(target, creds, `exit ${i % 7}`)));
    expect(rs.map((r) => r.code)).toEqual(Array.from({ length: 100 }, (_, i) => i % 7));
  });

  it("passes stdin and sends EOF", async () => {
    const { pool, target, creds } = await setup();
    const r = await pool.exec(target, creds, "cat", { stdin: "line 1\nline 2\n" });
    expect(r.stdout).toBe("line 1\nline 2\n");
    // without stdin the command sees EOF at once instead of hanging
    expect((await pool.exec(target, creds, "cat", { timeoutMs: 2_000 })).stdout).toBe("");
  });

  it("keeps at most maxOutputBytes per stream but streams everything to the callbacks", async () => {
    const { pool, target, creds } = await setup();
    let seen = 0;
    const r = await pool.exec(target, creds, "big 100000", { maxOutputBytes: 1000, onStdout: (b) => (seen += b.length) });
    expect(r.stdout.length).toBe(1000);
    expect(r.truncated).toBe(true);
    expect(seen).toBe(100000);
  });

  it("rejects on host key mismatch before anything authenticates or runs", async () => {
    const { pool, target, creds, server } = await setup();
    const err = await pool.exec({ ...target, hostKeyFingerprint: OTHER_FP }, creds, "echo should-not-run").catch((e) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(err.host).toBe("127.0.0.1");
    expect(err.port).toBe(server.port);
    expect(err.expected).toBe(OTHER_FP);
    expect(err.actual).toBe(server.hostKeyFingerprint);
    expect(err.message).toContain(`127.0.0.1:${server.port}`);
    expect(err.message).toContain(OTHER_FP);
    expect(err.message).toContain(server.hostKeyFingerprint);
    expect(server.connections).toBe(1);
    expect(server.authRequests).toBe(0);
    expect(server.execs).toEqual([]);
    // the failed connection is not cached: a correct pin then works
    expect((await pool.exec(target, creds, "echo ok")).stdout).toBe("ok\n");
  });

  it("refuses to connect without a pinned fingerprint", async () => {
    const { pool, target, creds, server } = await setup();
    await expect(pool.exec({ ...target, hostKeyFingerprint: undefined }, creds, "echo x")).rejects.toBeInstanceOf(
      HostKeyNotPinnedError,
    );
    await expect(pool.exec({ ...target, hostKeyFingerprint: "" }, creds, "echo x")).rejects.toBeInstanceOf(HostKeyNotPinnedError);
    await expect(pool.exec({ ...target, hostKeyFingerprint: "MD5:12:34" }, creds, "echo x")).rejects.toBeInstanceOf(
      HostKeyNotPinnedError,
    );
    await expect(
      pool.exec({ ...target, jumpHost: { host: "127.0.0.1", port: server.port, user: "j" } }, creds, "echo x"),
    ).rejects.toBeInstanceOf(HostKeyNotPinnedError);
    await expect(
      pool.upload({ ...target, hostKeyFingerprint: undefined }, creds, [{ path: "x", content: "" }]),
    ).rejects.toBeInstanceOf(HostKeyNotPinnedError);
    await sleep(50);
    expect(server.connections).toBe(0);
  });

  it("times out: signals and closes the channel, rejects SshTimeoutError", async () => {
    const { pool, target, creds, server } = await setup();
    const t0 = Date.now();
    const err = await pool.exec(target, creds, "sleep 10000", { timeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(SshTimeoutError);
    expect(err.message).toContain(`127.0.0.1:${server.port}`);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await until(() => server.signals.length > 0);
    expect(server.signals).toEqual(["TERM"]);
    await until(() => server.abortedCommands === 1);
    // the connection is still good and its channel slot was given back
    expect((await pool.exec(target, creds, "echo after")).stdout).toBe("after\n");
    expect(server.connections).toBe(1);
  });

  it("uses the pool's commandTimeoutMs by default", async () => {
    const { pool, target, creds } = await setup({ commandTimeoutMs: 200 });
    await expect(pool.exec(target, creds, "sleep 5000")).rejects.toBeInstanceOf(SshTimeoutError);
  });

  it("supports AbortSignal", async () => {
    const { pool, target, creds, server } = await setup();
    const ac = new AbortController();
    const p = pool.exec(target, creds, "sleep 10000", { signal: ac.signal });
    setTimeout(() => ac.abort(), 150);
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("AbortError");
    await until(() => server.signals.length > 0);
    // already aborted: nothing runs
    const before = server.execs.length;
    await expect(pool.exec(target, creds, "echo x", { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: "AbortError",
    });
    expect(server.execs.length).toBe(before);
  });

  it("reuses one connection for sequential and concurrent calls", async () => {
    const { pool, target, creds, server } = await setup();
    for (let i = 0; i < 3; i++) await pool.exec(target, creds, `echo ${i}`);
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.exec(target, creds, `echo c${i}`)));
    expect(rs.map((r) => r.stdout)).toEqual(Array.from({ length: 6 }, (_, i) => `c${i}\n`));
    expect(server.connections).toBe(1);
    expect(server.authenticated).toBe(1);
  });

  it("concurrent first calls share one in-flight connect", async () => {
    const { pool, target, creds, server } = await setup();
    await Promise.all(Array.from({ length: 5 }, () => pool.exec(target, creds, "echo x")));
    expect(server.connections).toBe(1);
  });

  it("queues channel opens beyond 8 per connection instead of failing", async () => {
    const { pool, target, creds, server } = await setup();
    const rs = await Promise.all(Array.from({ length: 20 }, () => pool.exec(target, creds, "sleep 100")));
    expect(rs.every((r) => r.code === 0)).toBe(true);
    expect(server.maxOpenSessions).toBe(8);
    expect(server.connections).toBe(1);
  });

  it("reconnects after the server drops the connection", async () => {
    const { pool, target, creds, server } = await setup();
    expect((await pool.exec(target, creds, "echo one")).stdout).toBe("one\n");
    server.dropAll();
    // right away (the pool may not have seen the close yet) and after it has
    expect((await pool.exec(target, creds, "echo two")).stdout).toBe("two\n");
    server.dropAll();
    await until(() => pool.size === 0);
    expect((await pool.exec(target, creds, "echo three")).stdout).toBe("three\n");
    expect(server.connections).toBe(3);
  });

  it("fails a running command with SshConnectError when the connection drops", async () => {
    const { pool, target, creds, server } = await setup();
    const p = pool.exec(target, creds, "sleep 5000");
    await until(() => server.execs.length === 1);
    server.dropAll();
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("closed");
  });

  it("closes idle connections after idleTimeoutMs", async () => {
    const { pool, target, creds, server } = await setup({ idleTimeoutMs: 100 });
    await pool.exec(target, creds, "echo x");
    await until(() => server.clients.size === 0);
    await until(() => pool.size === 0);
    await pool.exec(target, creds, "echo y");
    expect(server.connections).toBe(2);
  });

  it("evict drops the cached connection", async () => {
    const { pool, target, creds, server } = await setup();
    await pool.exec(target, creds, "echo x");
    pool.evict(target);
    expect(pool.size).toBe(0);
    await until(() => server.clients.size === 0);
    await pool.exec(target, creds, "echo y");
    expect(server.connections).toBe(2);
  });

  it("does not share a connection between different credentials", async () => {
    const other = generateKey();
    const server = await FakeSshd.start({ authorizedKeys: [other.public] });
    cleanups.push(() => server.close());
    const k2 = generateKey();
    const s2 = await FakeSshd.start({ hostKey: server.hostKey, authorizedKeys: [k2.public] });
    cleanups.push(() => s2.close());
    const pool = new SshPool();
    cleanups.push(() => pool.close());
    const t: SshTarget = { host: server.host, port: server.port, user: "u", hostKeyFingerprint: server.hostKeyFingerprint };
    await pool.exec(t, { privateKey: other.private }, "echo a");
    const err = await pool.exec(t, { privateKey: k2.private }, "echo b").catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("auth");
  });

  it("reports authentication failure as SshConnectError without key material", async () => {
    const { pool, target, server } = await setup();
    const wrong = generateKey();
    const err = await pool.exec(target, { privateKey: wrong.private }, "echo x").catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("auth");
    expect(err.message).toContain(`alice@127.0.0.1:${server.port}`);
    expect(err.message).not.toContain("PRIVATE KEY");
    const keyBody = wrong.private.split("\n")[1]!;
    expect(err.message).not.toContain(keyBody.slice(0, 20));
    expect(server.execs).toEqual([]);
  });

  it("reports a refused connection as SshConnectError naming host:port", async () => {
    const { pool, target, creds, server } = await setup();
    await server.close();
    const err = await pool.exec(target, creds, "echo x").catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("refused");
    expect(err.message).toContain(`127.0.0.1:${server.port}`);
  });

  it("reports a handshake timeout as SshConnectError", async () => {
    const net = await import("node:net");
    const silent = net.createServer(() => {}); // accepts TCP, never speaks SSH
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const sockets = new Set<import("node:net").Socket>();
    silent.on("connection", (s) => sockets.add(s));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const port = (silent.address() as import("node:net").AddressInfo).port;
    const pool = new SshPool({ connectTimeoutMs: 300 });
    cleanups.push(() => pool.close());
    const err = await pool
      .exec({ host: "127.0.0.1", port, user: "u", hostKeyFingerprint: OTHER_FP }, { privateKey: generateKey().private }, "echo x")
      .catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("timeout");
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it("uses passphrase-protected keys; a wrong passphrase never appears in the error", async () => {
    const enc = generateKey("correct horse battery staple");
    const { pool, target } = await setup({}, enc);
    const ok = await pool.exec(target, { privateKey: enc.private, passphrase: "correct horse battery staple" }, "echo in");
    expect(ok.stdout).toBe("in\n");
    const err = await pool.exec(target, { privateKey: enc.private, passphrase: "wrong-secret-words" }, "echo x").catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("key");
    expect(err.message).not.toContain("wrong-secret-words");
    const err2 = await pool.exec(target, { privateKey: enc.private }, "echo x").catch((e) => e);
    expect(err2).toBeInstanceOf(SshConnectError);
    expect(err2.kind).toBe("key");
  });

  it("never logs key material", async () => {
    const lines: string[] = [];
    const rec = (level: string) => (obj: object, msg?: string) => lines.push(`${level} ${msg} ${JSON.stringify(obj)}`);
    const logger = { debug: rec("debug"), info: rec("info"), warn: rec("warn"), error: rec("error") };
    const enc = generateKey("pass-phrase-value");
    const { pool, target, server } = await setup({ logger }, enc);
    await pool.exec(target, { privateKey: enc.private, passphrase: "pass-phrase-value" }, "echo x");
    await pool.exec(target, { privateKey: enc.private, passphrase: "bad-pass-value" }, "echo x").catch(() => {});
    await pool
      .exec({ ...target, hostKeyFingerprint: OTHER_FP }, { privateKey: enc.private, passphrase: "pass-phrase-value" }, "echo x")
      .catch(() => {});
    await server.close();
    pool.evict(target);
    await pool.exec(target, { privateKey: enc.private, passphrase: "pass-phrase-value" }, "echo x").catch(() => {});
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join("\n");
    expect(all).not.toContain("pass-phrase-value");
    expect(all).not.toContain("bad-pass-value");
    expect(all).not.toContain("PRIVATE KEY");
    expect(all).toContain("host key mismatch");
  });

  it("rejects calls after close()", async () => {
    const { pool, target, creds, server } = await setup();
    await pool.exec(target, creds, "echo x");
    await pool.close();
    await until(() => server.clients.size === 0);
    await expect(pool.exec(target, creds, "echo x")).rejects.toThrow(/closed/);
  });
});

describe("SshPool.stream", () => {
  it("streams output until the command exits", async () => {
    const { pool, target, creds } = await setup();
    const chunks: string[] = [];
    const ended = new Promise<number | null>((resolve) => {
      void pool.stream(target, creds, "ticks 3 30", { onData: (b) => chunks.push(b.toString()), onEnd: (code) => resolve(code) });
    });
    expect(await ended).toBe(0);
    expect(chunks.join("")).toBe("tick 0\ntick 1\ntick 2\n");
  });

  it("close() signals the command and ends the stream", async () => {
    const { pool, target, creds, server } = await setup();
    let ends = 0;
    const ended = new Promise<void>((resolve) => {
      void pool
        .stream(target, creds, "sleep 60000", {
          onData: () => {},
          onEnd: () => {
            ends++;
            resolve();
          },
        })
        .then((h) => setTimeout(() => h.close(), 100));
    });
    await ended;
    expect(ends).toBe(1);
    expect(server.signals).toEqual(["TERM"]);
    expect((await pool.exec(target, creds, "echo still")).stdout).toBe("still\n");
  });

  it("calls onError when the connection is lost", async () => {
    const { pool, target, creds, server } = await setup();
    const got = new Promise<Error>((resolve) => {
      void pool.stream(target, creds, "sleep 60000", {
        onData: () => {},
        onError: resolve,
        onEnd: () => resolve(new Error("onEnd")),
      });
    });
    await until(() => server.execs.length === 1);
    server.dropAll();
    const e = await got;
    expect(e).toBeInstanceOf(SshConnectError);
  });
});

describe("jump host", () => {
  it("connects to the target through the jump host, each verified with its own pin", async () => {
    const key = generateKey();
    const jump = await FakeSshd.start({ authorizedKeys: [key.public] });
    const node = await FakeSshd.start({ authorizedKeys: [key.public] });
    cleanups.push(
      () => jump.close(),
      () => node.close(),
    );
    const pool = new SshPool();
    cleanups.push(() => pool.close());
    const creds = { privateKey: key.private };
    const target: SshTarget = {
      host: node.host,
      port: node.port,
      user: "bob",
      hostKeyFingerprint: node.hostKeyFingerprint,
      jumpHost: { host: jump.host, port: jump.port, user: "hop", hostKeyFingerprint: jump.hostKeyFingerprint },
    };
    expect((await pool.exec(target, creds, "whoami")).stdout).toBe("bob\n");
    expect((await pool.exec(target, creds, "echo again")).stdout).toBe("again\n");
    expect(jump.tcpipRequests).toEqual([{ destIP: node.host, destPort: node.port }]);
    expect(jump.execs).toEqual([]);
    expect(node.connections).toBe(1);

    // wrong target pin: refused, nothing runs on the target
    const bad = await pool.exec({ ...target, hostKeyFingerprint: OTHER_FP }, creds, "echo no").catch((e) => e);
    expect(bad).toBeInstanceOf(HostKeyMismatchError);
    expect(bad.port).toBe(node.port);
    expect(bad.actual).toBe(node.hostKeyFingerprint);
    // wrong jump pin: refused at the jump host
    const badJump = await pool
      .exec({ ...target, jumpHost: { ...target.jumpHost!, hostKeyFingerprint: OTHER_FP } }, creds, "echo no")
      .catch((e) => e);
    expect(badJump).toBeInstanceOf(HostKeyMismatchError);
    expect(badJump.port).toBe(jump.port);
    expect(node.execs).toEqual(["whoami", "echo again"]);
  });
});

describe("scanHostKey", () => {
  it("returns the server's fingerprint without authenticating", async () => {
    const { server } = await setup();
    expect(await scanHostKey({ host: server.host, port: server.port })).toBe(server.hostKeyFingerprint);
    expect(server.authRequests).toBe(0);
    expect(server.execs).toEqual([]);
  });

  it("rejects with SshConnectError when nothing listens", async () => {
    const { server } = await setup();
    await server.close();
    await expect(scanHostKey({ host: server.host, port: server.port }, 2_000)).rejects.toBeInstanceOf(SshConnectError);
  });
});
