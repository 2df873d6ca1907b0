/**
 * The node probe run for real with /bin/sh on this machine (the "node"), against attempts started
 * the way the launcher starts them; every answer must be the one the single-attempt probe gives.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { attemptProbes, type NodeProbeTarget, nodeProbeCommand, nodeProbeInput, parseNodeProbe } from "./node-probe";
import {
  parsePid,
  parseProbe,
  pidCommand,
  probeCommand,
  renderEnvFile,
  renderLaunchScript,
  startCommand,
  stopCommand,
} from "./node-protocol";

// A work root with a space and shell syntax in it: it must only ever be data.
const root = mkdtempSync(join(tmpdir(), "trainyard-nprobe-$(touch x) '"));
const started: NodeProbeTarget[] = [];
let seq = 0;

const sh = (cmd: string, input?: string) => execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8", input });

function launch(argv: string[], opts: { start?: boolean } = {}): NodeProbeTarget {
  const attemptId = `np-${process.pid}-${++seq}`;
  const dir = join(root, "jobs", "job1", attemptId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "env"),
    renderEnvFile({ TRAINYARD_ATTEMPT_ID: attemptId, TRAINYARD_METRICS_FILE: `${dir}/metrics.jsonl` }),
  );
  writeFileSync(join(dir, "launch.sh"), renderLaunchScript({ dir, workdir: dir, argv }));
  if (opts.start !== false) {
    sh(startCommand(dir));
    started.push({ dir, attemptId });
  }
  return { dir, attemptId };
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const OPTS = { logTailBytes: 4096, metricsLines: 10, announcementLines: 200 };
const probeNode = (targets: NodeProbeTarget[]) =>
  attemptProbes(parseNodeProbe(sh(nodeProbeCommand(OPTS), nodeProbeInput(targets))), targets);
const probeOne = (t: NodeProbeTarget) => parseProbe(sh(probeCommand(t.dir, { ...OPTS, attemptId: t.attemptId })));

afterEach(() => {
  for (const s of started.splice(0)) {
    try {
      sh(stopCommand(s.dir, s.attemptId, "KILL"));
    } catch {}
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("node probe: every attempt on a node in one round trip", () => {
  it("reports each attempt exactly as the single probe does", async () => {
    const running = launch([
      "sh",
      "-c",
      'echo started; echo \'{"step":3,"total_steps":10}\' >>"$TRAINYARD_METRICS_FILE"; sleep 30',
    ]);
    const failed = launch(["sh", "-c", "echo oops; exit 3"]);
    const quiet = launch(["sleep", "30"]);
    const never = launch(["true"], { start: false });
    const announced = launch([
      "sh",
      "-c",
      'echo \'{"checkpoint":"/ck/step-5","step":5}\' >>"$TRAINYARD_METRICS_FILE"; echo \'{"step":6}\' >>"$TRAINYARD_METRICS_FILE"; sleep 30',
    ]);
    await waitFor(
      "the attempts to settle",
      () =>
        existsSync(join(failed.dir, "exit_code")) &&
        readFileSync(join(running.dir, "output.log"), "utf8").includes("started") &&
        existsSync(join(quiet.dir, "pid")) &&
        existsSync(join(announced.dir, "metrics.jsonl")) &&
        readFileSync(join(announced.dir, "metrics.jsonl"), "utf8").includes('"step":6'),
    );

    const all = [running, failed, quiet, never, announced];
    const node = probeNode(all);
    for (const t of all) {
      const { telemetry: _t, announcements: _a, ...single } = probeOne(t);
      const { telemetry: _nt, announcements: _na, ...batched } = node.get(t.attemptId)!;
      expect(batched, t.attemptId).toEqual(single);
    }
    expect(node.get(running.attemptId)).toMatchObject({
      alive: true,
      logTail: "started\n",
      metrics: [{ step: 3, total_steps: 10 }],
    });
    expect(node.get(failed.attemptId)).toMatchObject({ alive: false, exitCode: 3, logTail: "oops\n" });
    expect(node.get(quiet.attemptId)).toMatchObject({ alive: true, logSize: 0, logTail: "", announcements: [] });
    expect(node.get(never.attemptId)).toEqual({
      started: false,
      alive: false,
      logSize: 0,
      logTail: "",
      metrics: [],
      announcements: [],
    });
    expect(node.get(announced.attemptId)?.announcements).toEqual(['{"checkpoint":"/ck/step-5","step":5}']);
    // What a starting launch polls for: the pid file alone.
    expect(parsePid(sh(pidCommand(quiet.dir)))).toBe(node.get(quiet.attemptId)?.pgid);
    expect(parsePid(sh(pidCommand(never.dir)))).toBeUndefined();
    expect(existsSync(join(process.cwd(), "x"))).toBe(false);
  });

  it("counts a process that left the group but carries the attempt id, and not a group it cannot prove its own", async () => {
    // The program re-parents itself into a session of its own (setsid): only its environment ties it.
    const escaped = launch(["sh", "-c", "setsid sleep 30 & exit 0"]);
    await waitFor("the wrapper to end", () => existsSync(join(escaped.dir, "exit_code")));
    // A pid file naming a live group that is not this attempt's (a reused pid): not alive.
    const reused = launch(["true"], { start: false });
    const stranger = launch(["sleep", "30"]);
    await waitFor("the stranger's pid", () => existsSync(join(stranger.dir, "pid")));
    writeFileSync(join(reused.dir, "pid"), readFileSync(join(stranger.dir, "pid")));

    const node = probeNode([escaped, reused]);
    expect(node.get(escaped.attemptId)).toMatchObject({ alive: true, exitCode: 0 });
    expect(node.get(reused.attemptId)).toMatchObject({ started: true, alive: false });
    expect(node.get(reused.attemptId)?.alive).toBe(probeOne(reused).alive);
  });

  it("refuses targets that could break a line, and output cut short", () => {
    expect(() => nodeProbeInput([{ attemptId: "a b", dir: "/x" }])).toThrow(/invalid attempt id/);
    expect(() => nodeProbeInput([{ attemptId: "a", dir: "/x\n@@end" }])).toThrow(/one line/);
    expect(() => nodeProbeInput([{ attemptId: "a", dir: "relative" }])).toThrow(/absolute/);
    const out = sh(nodeProbeCommand(OPTS), "");
    expect(() => parseNodeProbe(out.replace("@@end", ""))).toThrow(/incomplete/);
    expect(attemptProbes(parseNodeProbe(out), [{ attemptId: "gone", dir: "/nonexistent" }]).size).toBe(0);
  });
});
