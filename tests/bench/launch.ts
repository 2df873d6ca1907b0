/**
 * `pnpm bench:launch` (part of `pnpm bench`): getting commands onto nodes (issue 9 P2, P3).
 *   - P2: one command (`true`) fanned out to 8 and 32 node entries through @trainyard/ssh's pool,
 *     cold (a new pool: handshakes included) and pooled (a warm pool), vs `pdsh -f 32` (Debian pdsh,
 *     exec module running ssh) and vs parallel `ssh` processes. The 3 local sshd nodes each appear
 *     many times as distinct entries, so the pool shares connections between entries of the same
 *     endpoint as it would for one host listed several times: the pooled figures are a lower bound.
 *   - P3: submit → every rank started (attempt startedAt) of a 2-node `command` job through the
 *     whole platform, vs bare `ssh` starting the same command detached on the 2 nodes.
 * Usage: pnpm bench:launch [rounds=10]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SshPool } from "@trainyard/ssh";
import { type InfraNode, loadInfra } from "@trainyard/testkit";
import { getJob, registerCluster, startPlatform, submitJob, waitForJob } from "../harness";
import { load1, pct, ratio, round, timed, writeResults } from "./lib";

const run = promisify(execFile);
const ROUNDS = Number(process.argv[2] ?? "10");
const stats = (xs: number[]) => ({ p50Ms: round(pct(xs, 0.5)), p99Ms: round(pct(xs, 0.99)) });

async function main() {
  const infra = loadInfra();
  const key = infra.clientKeyPath;
  const privateKey = readFileSync(key, "utf8");
  const dir = mkdtempSync(join(tmpdir(), "ty-bench-"));
  try {
    // An ssh config naming every entry e<i> (pdsh's and ssh's view of "32 nodes"), host keys pinned by keyscan.
    const kh = join(dir, "known_hosts");
    const hosts = infra.nodes.map((n) => n.host);
    const scan = await run("ssh-keyscan", ["-p", String(infra.nodes[0]!.port), "-t", "ed25519", ...hosts]);
    writeFileSync(kh, scan.stdout);
    const entries = (n: number): InfraNode[] => Array.from({ length: n }, (_, i) => infra.nodes[i % infra.nodes.length]!);
    const cfg = join(dir, "ssh_config");
    writeFileSync(
      cfg,
      entries(32)
        .map(
          (n, i) =>
            `Host e${i}\n  HostName ${n.host}\n  Port ${n.port}\n  User ${n.user}\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${kh}\n  StrictHostKeyChecking yes\n  BatchMode yes\n`,
        )
        .join(""),
    );
    const target = (n: InfraNode) => ({ host: n.host, port: n.port, user: n.user, hostKeyFingerprint: n.hostKeyFingerprint });

    const p2: Record<string, Record<string, ReturnType<typeof stats>>> = {};
    for (const width of [8, 32]) {
      const list = entries(width);
      const cold: number[] = [];
      const pooled: number[] = [];
      const ssh: number[] = [];
      const pdsh: number[] = [];
      const warm = new SshPool();
      await Promise.all(list.map((n) => warm.exec(target(n), { privateKey }, "true")));
      for (let r = 0; r < ROUNDS; r++) {
        cold.push(
          await timed(async () => {
            const pool = new SshPool();
            await Promise.all(list.map((n) => pool.exec(target(n), { privateKey }, "true")));
            await pool.close();
          }),
        );
        pooled.push(await timed(() => Promise.all(list.map((n) => warm.exec(target(n), { privateKey }, "true")))));
        ssh.push(await timed(() => Promise.all(list.map((_, i) => run("ssh", ["-F", cfg, `e${i}`, "true"])))));
        pdsh.push(
          await timed(() =>
            run("pdsh", ["-R", "exec", "-f", "32", "-w", list.map((_, i) => `e${i}`).join(","), "ssh", "-F", cfg, "%h", "true"]),
          ),
        );
      }
      await warm.close();
      p2[String(width)] = { poolCold: stats(cold), poolPooled: stats(pooled), parallelSsh: stats(ssh), pdsh: stats(pdsh) };
      console.error(`[bench:launch] P2 ${width} done`);
    }

    // P3: the platform, end to end, vs bare ssh.
    const p = await startPlatform({ launchers: 1, monitors: 1, env: { LOG_LEVEL: "error", API_RATE_LIMIT: "1000000" } });
    const platform: number[] = [];
    const bare: number[] = [];
    try {
      const cluster = await registerCluster(p, { nodes: ["n1", "n2"], gpus: 1 });
      const command = ["sleep", "1"];
      for (let r = 0; r < ROUNDS; r++) {
        const t0 = Date.now();
        const id = await submitJob(p, {
          name: `p3-${r}`,
          framework: "command",
          cluster: cluster.name,
          resources: { nodes: 2, gpusPerNode: 1 },
          command,
        });
        const done = await waitForJob(p, id, undefined, 120_000);
        if (done.status !== "SUCCEEDED") throw new Error(`P3 job ${id} ${done.status}`);
        platform.push(new Date((await getJob(p, id)).attempts[0]!.startedAt!).getTime() - t0);
        // The same command started detached on both nodes by plain ssh (new connections, like a cold start).
        bare.push(
          await timed(() =>
            Promise.all(
              [0, 1].map((i) => run("ssh", ["-F", cfg, `e${i}`, `setsid ${command.join(" ")} </dev/null >/dev/null 2>&1 &`])),
            ),
          ),
        );
      }
    } finally {
      await p.close();
    }
    const p3 = { platform: stats(platform), bareSsh: stats(bare) };

    const line = (w: string) => {
      const x = p2[w]!;
      return `| ${w} | ${x.poolCold!.p50Ms} / ${x.poolCold!.p99Ms} (× ${ratio(x.poolCold!.p50Ms, x.pdsh!.p50Ms)}) | ${x.poolPooled!.p50Ms} / ${x.poolPooled!.p99Ms} (× ${ratio(x.poolPooled!.p50Ms, x.pdsh!.p50Ms)}) | ${x.pdsh!.p50Ms} / ${x.pdsh!.p99Ms} | ${x.parallelSsh!.p50Ms} / ${x.parallelSsh!.p99Ms} |`;
    };
    writeResults("launch", { rounds: ROUNDS, load1: load1(), p2, p3 }, [
      `P2: one command to N node entries (3 sshd nodes, each listed N/3 times), ${ROUNDS} rounds; p50 / p99 ms (× pdsh p50)`,
      "",
      "| nodes | pool, cold | pool, warm | pdsh -f 32 (ssh) | parallel ssh |",
      "|---|---|---|---|---|",
      line("8"),
      line("32"),
      "",
      `P3: submit → all ranks started on 2 nodes, ${ROUNDS} jobs one after another; p50 / p99 ms`,
      "",
      "| platform (submit → attempt startedAt) | bare ssh starting the command | × bare ssh (p50) |",
      "|---|---|---|",
      `| ${p3.platform.p50Ms} / ${p3.platform.p99Ms} | ${p3.bareSsh.p50Ms} / ${p3.bareSsh.p99Ms} | ${ratio(p3.platform.p50Ms, p3.bareSsh.p50Ms)} |`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
