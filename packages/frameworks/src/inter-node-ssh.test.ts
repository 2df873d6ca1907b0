import { execFileSync, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  attemptKeyMarker,
  authorizedKeyLine,
  authorizeKeyCommand,
  ed25519OpenSshPrivateKey,
  ed25519PublicBlob,
  ed25519PublicKeyLine,
  knownHostsLine,
  renderSshConfig,
  revokeKeyCommand,
  sshKeyType,
} from "./inter-node-ssh";

function keyPair() {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  return { seed: Buffer.from(jwk.d!, "base64url"), pub: Buffer.from(jwk.x!, "base64url") };
}

const sshKeygen = spawnSync("ssh-keygen", ["-?"], { stdio: "ignore" }).error === undefined;
// On CI a missing tool fails the file instead of skipping its test.
if (!sshKeygen && process.env.CI === "true") throw new Error("CI=true but ssh-keygen is not installed (openssh-client)");

describe("OpenSSH ed25519 keys from node's crypto", () => {
  it.skipIf(!sshKeygen)("ssh-keygen reads every generated private key back to the same public key", () => {
    const dir = mkdtempSync(join(tmpdir(), "ty-key-"));
    // Many keys: an encoding slip that only shows for some key bytes would surface here.
    for (let i = 0; i < 40; i++) {
      const { seed, pub } = keyPair();
      const file = join(dir, `k${i}`);
      writeFileSync(file, ed25519OpenSshPrivateKey(seed, pub, "trainyard-attempt=a1-x"), { mode: 0o600 });
      const derived = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" }).trim();
      expect(derived.split(" ").slice(0, 2).join(" ")).toBe(ed25519PublicKeyLine(pub, "c").split(" ").slice(0, 2).join(" "));
    }
  });

  it("is byte-stable for a given key and check number", () => {
    const seed = Buffer.alloc(32, 1);
    const pub = Buffer.alloc(32, 2);
    const a = ed25519OpenSshPrivateKey(seed, pub, "c", 0x01020304);
    expect(a).toBe(ed25519OpenSshPrivateKey(seed, pub, "c", 0x01020304));
    expect(a.startsWith("-----BEGIN OPENSSH PRIVATE KEY-----\n")).toBe(true);
    const body = Buffer.from(a.split("\n").slice(1, -2).join(""), "base64");
    expect(body.subarray(0, 15).toString("latin1")).toBe("openssh-key-v1\0");
    expect(() => ed25519OpenSshPrivateKey(Buffer.alloc(31), pub, "c")).toThrow(/32 bytes/);
  });

  it("public blobs carry their type", () => {
    expect(sshKeyType(ed25519PublicBlob(Buffer.alloc(32)))).toBe("ssh-ed25519");
    expect(() => sshKeyType(Buffer.from([0, 0, 0, 99]))).toThrow(/malformed/);
  });
});

describe("inter-node SSH text", () => {
  it("known_hosts lines: bracketed host:port unless 22", () => {
    const blob = ed25519PublicBlob(Buffer.alloc(32, 7));
    expect(knownHostsLine("127.0.0.3", 2222, blob)).toBe(`[127.0.0.3]:2222 ssh-ed25519 ${blob.toString("base64")}`);
    expect(knownHostsLine("gpu-b.lab", 22, blob)).toBe(`gpu-b.lab ssh-ed25519 ${blob.toString("base64")}`);
    expect(() => knownHostsLine("a b", 22, blob)).toThrow(/unsafe/);
  });

  it("authorized_keys line: restricted, marked with the attempt", () => {
    const line = ed25519PublicKeyLine(Buffer.alloc(32, 3), "whatever");
    expect(authorizedKeyLine(line, "a1-abc")).toBe(`restrict ${line.split(" ").slice(0, 2).join(" ")} trainyard-attempt=a1-abc`);
    expect(() => authorizedKeyLine("not a key", "a1")).toThrow(/public key/);
    expect(() => attemptKeyMarker("a b")).toThrow(/attempt id/);
  });

  it("ssh config refuses unsafe values", () => {
    expect(() =>
      renderSshConfig({ dir: "/x", attemptId: "a1", peers: [{ host: "h\nProxyCommand x", port: 22, user: "u" }] }),
    ).toThrow();
    expect(() => renderSshConfig({ dir: "/x y", attemptId: "a1", peers: [] })).toThrow();
  });

  it("authorise and revoke edit only the attempt's own lines, idempotently", () => {
    const home = mkdtempSync(join(tmpdir(), "ty-home-"));
    const run = (cmd: string) =>
      execFileSync("/bin/sh", ["-c", cmd], { env: { HOME: home, PATH: "/usr/bin:/bin" }, encoding: "utf8" });
    const f = join(home, ".ssh", "authorized_keys");
    const own = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwn own@laptop";
    run(`mkdir -p ~/.ssh && printf '%s\\n' '${own}' > ~/.ssh/authorized_keys`);
    const a1 = authorizedKeyLine(ed25519PublicKeyLine(Buffer.alloc(32, 1), "x"), "a1-one");
    const a2 = authorizedKeyLine(ed25519PublicKeyLine(Buffer.alloc(32, 2), "x"), "a1-one.2");
    expect(run(authorizeKeyCommand(a1, "a1-one"))).toBe("removed 0\n");
    expect(run(authorizeKeyCommand(a1, "a1-one"))).toBe("removed 1\n"); // replaced, not duplicated
    run(authorizeKeyCommand(a2, "a1-one.2"));
    expect(readFileSync(f, "utf8")).toBe(`${own}\n${a1}\n${a2}\n`);
    const dir = join(home, "attempt");
    run(`mkdir -p ${dir}/ssh && echo secret > ${dir}/ssh/id_ed25519`);
    expect(run(revokeKeyCommand("a1-one", dir))).toBe("removed 1\n");
    expect(readFileSync(f, "utf8")).toBe(`${own}\n${a2}\n`);
    expect(spawnSync("test", ["-e", `${dir}/ssh`]).status).toBe(1);
    expect(run(revokeKeyCommand("a1-one"))).toBe("removed 0\n");
    expect(run(`stat -c %a ${f}`).trim()).toBe("600");
    expect(() => authorizeKeyCommand(a1, "a1-other")).toThrow(/marker/);
  });
});
