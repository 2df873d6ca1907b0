/**
 * Integration tests against the real local sshd nodes started by scripts/infra/up.sh
 * (described by /var/tmp/trainyard-infra/infra.json).
 */
import { randomBytes } from "node:crypto";
import { clientPrivateKey, type Infra, type InfraNode, loadInfra } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostKeyMismatchError, SftpError, SshConnectError, SshTimeoutError } from "./errors";
import { SshPool } from "./pool";
import { scanHostKey } from "./scan";
import { generateKey } from "./test-support/fake-sshd";
import type { SshCredentials, SshTarget } from "./types";

let infra: Infra;
let creds: SshCredentials;
let pool: SshPool;
let n1: InfraNode;
let n2: InfraNode;
/** Per-run scratch directories, one per node used, removed in afterAll. */
const scratch = new Map<string, { target: SshTarget; dir: string }>();

const targetOf = (n: InfraNode): SshTarget => ({
  host: n.host,
  port: n.port,
  user: n.user,
  hostKeyFingerprint: n.hostKeyFingerprint,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function scratchDir(n: InfraNode): string {
  let s = scratch.get(n.name);
  if (!s) {
    s = { target: targetOf(n), dir: `${n.workRoot}/tmp-${randomBytes(6).toString("hex")}` };
    scratch.set(n.name, s);
  }
  return s.dir;
}

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(100);
  }
}

beforeAll(() => {
  infra = loadInfra();
  creds = { privateKey: clientPrivateKey(infra) };
  if (infra.nodes.length < 2) throw new Error("these tests need at least 2 sshd nodes");
  [n1, n2] = infra.nodes as [InfraNode, InfraNode];
  pool = new SshPool({ connectTimeoutMs: 10_000, commandTimeoutMs: 60_000 });
});

afterAll(async () => {
  try {
    for (const { target, dir } of scratch.values()) {
      if (!/\/tmp-[0-9a-f]{12}$/.test(dir)) continue; // never remove anything else
      await pool.exec(target, creds, `rm -rf '${dir}'`);
      const r = await pool.exec(target, creds, `test -e '${dir}'`);
      expect(r.code).toBe(1); // gone
    }
  } finally {
    await pool?.close();
  }
});

describe("SshPool against real sshd nodes", () => {
  it("runs a command as the node user", async () => {
    for (const n of [n1, n2]) {
      const r = await pool.exec(targetOf(n), creds, "id -un");
      expect(r).toMatchObject({ code: 0, stdout: `${n.user}\n`, stderr: "", truncated: false });
    }
  });

  it("reports non-zero exit codes and stderr", async () => {
    const r = await pool.exec(targetOf(n1), creds, "echo oops >&2; exit 7");
    expect(r.code).toBe(7);
    expect(r.stderr).toBe("oops\n");
    const missing = await pool.exec(targetOf(n1), creds, "definitely-not-a-command-xyz");
    expect(missing.code).toBe(127);
  });

  it("runs many commands concurrently over the pooled connection", async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.exec(targetOf(n1), creds, `sleep 0.1; echo ${i}`)));
    expect(rs.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it("passes stdin", async () => {
    const r = await pool.exec(targetOf(n1), creds, "wc -c", { stdin: Buffer.alloc(100_000, 1) });
    expect(r.stdout.trim()).toBe("100000");
  });

  it("uploads by SFTP creating parent directories, downloads it back, applies the mode", async () => {
    const t = targetOf(n1);
    const dir = scratchDir(n1);
    const text = `#!/bin/sh\necho hello from ${n1.name}\n`;
    const bin = randomBytes(300_000);
    await pool.upload(t, creds, [
      { path: `${dir}/a/b/file`, content: text, mode: 0o750 },
      { path: `${dir}/a/c/blob.bin`, content: bin },
      { path: `${dir}/a/b/secret`, content: "x", mode: 0o600 },
    ]);
    expect((await pool.download(t, creds, `${dir}/a/b/file`)).toString("utf8")).toBe(text);
    expect((await pool.download(t, creds, `${dir}/a/c/blob.bin`)).equals(bin)).toBe(true);
    const st = await pool.exec(
      t,
      creds,
      `stat -c '%a %U' '${dir}/a/b/file' '${dir}/a/b/secret'; test -d '${dir}/a/c' && echo dir`,
    );
    expect(st.stdout).toBe(`750 ${n1.user}\n600 ${n1.user}\ndir\n`);
    expect((await pool.exec(t, creds, `'${dir}/a/b/file'`)).stdout).toBe(`hello from ${n1.name}\n`);
    // overwriting keeps working and re-applies the mode
    await pool.upload(t, creds, [{ path: `${dir}/a/b/file`, content: "v2", mode: 0o640 }]);
    expect((await pool.download(t, creds, `${dir}/a/b/file`)).toString()).toBe("v2");
    expect((await pool.exec(t, creds, `stat -c '%a' '${dir}/a/b/file'`)).stdout).toBe("640\n");
  });

  it("download: a missing file is SftpError.notFound; a file over maxBytes is refused", async () => {
    const t = targetOf(n1);
    const dir = scratchDir(n1);
    const err = await pool.download(t, creds, `${dir}/nope`).catch((e) => e);
    expect(err).toBeInstanceOf(SftpError);
    expect(err.notFound).toBe(true);
    await pool.upload(t, creds, [{ path: `${dir}/big`, content: Buffer.alloc(5000) }]);
    await expect(pool.download(t, creds, `${dir}/big`, 1000)).rejects.toBeInstanceOf(SftpError);
    expect((await pool.download(t, creds, `${dir}/big`, 5000)).length).toBe(5000);
  });

  it("upload into a directory the user may not write fails with SftpError", async () => {
    const err = await pool
      .upload(targetOf(n1), creds, [{ path: "/root/trainyard-should-not-exist/x", content: "x" }])
      .catch((e) => e);
    expect(err).toBeInstanceOf(SftpError);
  });

  it("streams a command that prints over time, then exits", async () => {
    const chunks: Buffer[] = [];
    const times: number[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      pool
        .stream(targetOf(n1), creds, "for i in 1 2 3; do echo line $i; sleep 0.3; done", {
          onData: (b) => {
            chunks.push(b);
            times.push(Date.now());
          },
          onEnd: resolve,
          onError: reject,
        })
        .catch(reject);
    });
    expect(code).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe("line 1\nline 2\nline 3\n");
    expect(times.length).toBeGreaterThanOrEqual(2); // arrived over time, not in one piece at the end
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(300);
  });

  it("closing a stream (tail -f) stops the remote process", async () => {
    const t = targetOf(n1);
    const dir = scratchDir(n1);
    await pool.upload(t, creds, [{ path: `${dir}/log`, content: "first\n" }]);
    let out = "";
    let ended = false;
    const handle = await pool.stream(t, creds, `echo pid=$$; exec tail -n +1 -f '${dir}/log'`, {
      onData: (b) => (out += b.toString()),
      onEnd: () => (ended = true),
    });
    await until(async () => out.includes("first"));
    await pool.exec(t, creds, `echo second >> '${dir}/log'`);
    await until(async () => out.includes("second"));
    const pid = /pid=(\d+)/.exec(out)?.[1];
    expect(pid).toBeDefined();
    handle.close();
    await until(async () => ended);
    await until(async () => (await pool.exec(t, creds, `kill -0 ${pid} 2>/dev/null`)).code !== 0);

    // a command that never writes would not notice the closed channel: close() signals its process group
    let out2 = "";
    const h2 = await pool.stream(t, creds, "echo sid=$$; sleep 600; echo not-reached", { onData: (b) => (out2 += b.toString()) });
    await until(async () => out2.includes("sid="));
    const sid = /sid=(\d+)/.exec(out2)?.[1];
    h2.close();
    await until(async () => (await pool.exec(t, creds, `ps -o pid= -s ${sid} | grep -c . || true`)).stdout.trim() === "0");
  });

  it("a command timeout signals the remote process group", async () => {
    const t = targetOf(n1);
    const dir = scratchDir(n1);
    const err = await pool
      .exec(t, creds, `echo $$ > '${dir}/sid'; sleep 30; echo not-reached`, { timeoutMs: 1_000 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(SshTimeoutError);
    const sid = (await pool.download(t, creds, `${dir}/sid`)).toString().trim();
    expect(sid).toMatch(/^\d+$/);
    // sshd delivers the signal with killpg(): the shell and its `sleep` child are both gone
    await until(async () => (await pool.exec(t, creds, `ps -o pid= -s ${sid} | grep -c . || true`)).stdout.trim() === "0");
  });

  it("refuses a wrong pinned fingerprint with HostKeyMismatchError", async () => {
    const wrongPin = n2.hostKeyFingerprint; // another node's real key
    const err = await pool
      .exec({ ...targetOf(n1), hostKeyFingerprint: wrongPin }, creds, "touch /tmp/should-not-run")
      .catch((e) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(err.expected).toBe(wrongPin);
    expect(err.actual).toBe(n1.hostKeyFingerprint);
    expect(err.message).toContain(`${n1.host}:${n1.port}`);
  });

  it("rejects an unknown client key with SshConnectError (auth)", async () => {
    const err = await pool.exec(targetOf(n1), { privateKey: generateKey().private }, "id").catch((e) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.kind).toBe("auth");
    expect(err.message).toContain(`${n1.user}@${n1.host}:${n1.port}`);
  });

  it("scanHostKey returns the fingerprint pinned in infra.json", async () => {
    for (const n of infra.nodes) {
      expect(await scanHostKey({ host: n.host, port: n.port })).toBe(n.hostKeyFingerprint);
    }
  });

  it("reaches n2 through n1 as jump host", async () => {
    const viaN1: SshTarget = { ...targetOf(n2), jumpHost: targetOf(n1) };
    const r = await pool.exec(viaN1, creds, "id -un; hostname >/dev/null; echo $SSH_CONNECTION");
    const [user, conn] = r.stdout.split("\n");
    expect(r.code).toBe(0);
    expect(user).toBe(n2.user);
    expect(conn?.split(" ")[2]).toBe(n2.host); // the server side of the connection is n2's sshd
    // SFTP works over the jump too
    const dir = scratchDir(n2);
    await pool.upload(viaN1, creds, [{ path: `${dir}/via-jump`, content: "hop" }]);
    expect((await pool.download(viaN1, creds, `${dir}/via-jump`)).toString()).toBe("hop");
    // the target's own pin is still verified through the tunnel
    const bad = await pool.exec({ ...viaN1, hostKeyFingerprint: n1.hostKeyFingerprint }, creds, "id").catch((e) => e);
    expect(bad).toBeInstanceOf(HostKeyMismatchError);
    expect(bad.host).toBe(n2.host);
    expect(bad.actual).toBe(n2.hostKeyFingerprint);
  });
});
