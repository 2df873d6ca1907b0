import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateAttemptKeyPair, revokeInterNodeSsh, sweepPendingSshKeys } from "./inter-node-ssh";

const sshKeygen = spawnSync("ssh-keygen", ["-?"], { stdio: "ignore" }).error === undefined;
// On CI a missing tool fails the file instead of skipping its test.
if (!sshKeygen && process.env.CI === "true") throw new Error("CI=true but ssh-keygen is not installed (openssh-client)");

describe("generateAttemptKeyPair", () => {
  it("makes a fresh OpenSSH ed25519 pair per attempt, marked with the attempt id", () => {
    const a = generateAttemptKeyPair("a1-0001");
    const b = generateAttemptKeyPair("a1-0001");
    expect(a.privateKey).not.toBe(b.privateKey);
    expect(a.publicKeyLine).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ trainyard-attempt=a1-0001$/);
    expect(a.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
  });

  it.skipIf(!sshKeygen)("OpenSSH reads the private key back to the same public key", () => {
    const dir = mkdtempSync(join(tmpdir(), "ty-attempt-key-"));
    for (let i = 0; i < 10; i++) {
      const k = generateAttemptKeyPair(`a1-${i}`);
      const file = join(dir, `id_${i}`);
      writeFileSync(file, k.privateKey, { mode: 0o600 });
      const pub = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" }).trim();
      expect(pub.split(" ").slice(0, 2)).toEqual(k.publicKeyLine.split(" ").slice(0, 2));
    }
  });
});

describe("revokeInterNodeSsh / sweepPendingSshKeys", () => {
  const spec = { framework: "horovod", resources: { nodes: 2, gpusPerNode: 1 } } as never;
  const cluster = {
    nodes: [
      { name: "n1", host: "10.0.0.1", port: 22, user: "a", workRoot: "/w1" },
      { name: "n2", host: "10.0.0.2", port: 22, user: "b", workRoot: "/w2" },
    ],
  } as never;
  const attempt = (over: Record<string, unknown> = {}) => ({
    id: "a1-x",
    nodes: [
      { name: "n1", nodeRank: 0 },
      { name: "n2", nodeRank: 1 },
    ],
    ...over,
  });

  function fakes(reachable: Set<string>) {
    const commands: Array<[string, string]> = [];
    const recorded: Array<[number, string[], boolean]> = [];
    const gateway = {
      command: async (_c: unknown, node: string, cmd: string) => {
        if (!reachable.has(node)) throw new Error(`connect ECONNREFUSED ${node}`);
        commands.push([node, cmd]);
        return "removed 1\n";
      },
    } as never;
    const repos = {
      jobs: { setSshKeyNodes: async (_id: unknown, i: number, n: string[], p: boolean) => void recorded.push([i, n, p]) },
    };
    return { gateway, repos, commands, recorded };
  }

  it("records the nodes it could not reach, and the sweep finishes the job once they are back", async () => {
    const f = fakes(new Set(["n1"]));
    const job = { _id: "j1", spec, attempts: [attempt()] } as never;
    const res = await revokeInterNodeSsh({ gateway: f.gateway, repos: f.repos }, cluster, job, attempt());
    expect(res).toEqual([
      { node: "n1", removed: 1 },
      { node: "n2", error: "connect ECONNREFUSED n2" },
    ]);
    // The head's ssh directory goes with the key.
    expect(f.commands[0]![1]).toContain("rm -rf /w1/jobs/j1/a1-x/ssh");
    expect(f.recorded).toEqual([[0, ["n2"], true]]);

    const g = fakes(new Set(["n1", "n2"]));
    const pending = {
      _id: "j1",
      spec,
      status: "FAILED",
      currentAttemptId: "a1-x",
      clusterId: "c",
      attempts: [attempt({ sshKeyNodes: ["n2"] })],
    };
    const running = { ...pending, _id: "j2", status: "RUNNING" };
    await sweepPendingSshKeys({
      gateway: g.gateway,
      repos: {
        jobs: { ...g.repos.jobs, withPendingSshKeys: async () => [pending, running] },
        clusters: { byId: async () => cluster },
      } as never,
    });
    // Only n2 of the ended attempt; the running attempt keeps its key.
    expect(g.commands.map(([n]) => n)).toEqual(["n2"]);
    expect(g.commands[0]![1]).not.toContain("rm -rf");
    expect(g.recorded).toEqual([[0, [], false]]);
  });

  it("does nothing for frameworks without inter-node SSH", async () => {
    const f = fakes(new Set(["n1", "n2"]));
    const job = {
      _id: "j1",
      spec: { framework: "pytorch", resources: { nodes: 2, gpusPerNode: 1 } },
      attempts: [attempt()],
    } as never;
    expect(await revokeInterNodeSsh({ gateway: f.gateway, repos: f.repos }, cluster, job, attempt())).toEqual([]);
    expect(f.commands).toEqual([]);
  });
});
