import { readdirSync, readFileSync } from "node:fs";
import { afterAll } from "vitest";

/** Live (not zombie) processes owned by the test nodes' users (ty1, ty2, …). */
export function nodeUserProcesses(): Array<{ pid: number; user: string; cmd: string }> {
  const users = new Map<number, string>();
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && /^ty\d+$/.test(name) && uid) users.set(Number(uid), name);
  }
  const found: Array<{ pid: number; user: string; cmd: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      const user = users.get(uid);
      if (!user || state === "Z") continue;
      // The nodes' own sshd session processes come and go with the tests' SSH pools.
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "latin1").split("\0").join(" ").trim();
      if (cmd.startsWith("sshd")) continue;
      found.push({ pid: Number(entry), user, cmd });
    } catch {
      // process ended meanwhile
    }
  }
  return found;
}

/**
 * After every integration file: whatever a file started on the nodes must be gone. A leftover
 * (a rank holding a port, say) would break the next file in ways that hide the real culprit, so
 * it is reported with the file's name and killed.
 */
afterAll(async () => {
  let left = nodeUserProcesses();
  // Stops already under way (TERM, grace, KILL) get a moment to finish.
  for (let i = 0; i < 20 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 250));
    left = nodeUserProcesses();
  }
  if (!left.length) return;
  console.warn(
    `[node-hygiene] ${left.length} process(es) left on the test nodes; killing them:\n${left.map((p) => `  ${p.user} ${p.pid} ${p.cmd.slice(0, 160)}`).join("\n")}`,
  );
  for (const p of left) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
