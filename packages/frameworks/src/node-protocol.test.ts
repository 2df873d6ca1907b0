/**
 * These tests run the generated scripts for real with /bin/sh on this machine: the attempt
 * directory is a temp dir and the "node" is a local process group.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  attemptDir,
  logReadCommand,
  parseProbe,
  parseSurvivors,
  probeCommand,
  renderEnvFile,
  renderLaunchScript,
  startCommand,
  stopCommand,
  survivorsCommand,
} from "./node-protocol";

const root = mkdtempSync(join(tmpdir(), "trainyard-np-"));
const started: Array<{ dir: string; attemptId: string }> = [];
let seq = 0;

function run(cmd: string): string {
  return execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8" });
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Writes env + launch.sh for `argv` into a fresh attempt dir and starts it like the launcher does. */
function launch(argv: string[], env: Record<string, string> = {}, opts: { workdir?: string; start?: boolean } = {}) {
  const attemptId = `att-${process.pid}-${++seq}`;
  const dir = attemptDir(root, "job1", attemptId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "env"),
    renderEnvFile({ ...env, TRAINYARD_ATTEMPT_ID: attemptId, TRAINYARD_METRICS_FILE: `${dir}/metrics.jsonl` }),
  );
  writeFileSync(join(dir, "launch.sh"), renderLaunchScript({ dir, workdir: opts.workdir ?? dir, argv }));
  if (opts.start !== false) {
    run(startCommand(dir));
    started.push({ dir, attemptId });
  }
  return { dir, attemptId };
}

const probe = (dir: string, attemptId?: string) =>
  parseProbe(run(probeCommand(dir, { logTailBytes: 4096, metricsLines: 10, ...(attemptId ? { attemptId } : {}) })));
const survivors = (dir: string, attemptId: string) => parseSurvivors(run(survivorsCommand(dir, attemptId)));
const exists = (pid: number) => {
  try {
    // Zombies count as gone: they hold nothing and may never be reaped in a container.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

afterEach(() => {
  // Leave nothing running even when an assertion failed half-way.
  for (const s of started.splice(0)) {
    try {
      run(stopCommand(s.dir, s.attemptId, "KILL"));
    } catch {}
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("renderEnvFile", () => {
  it("writes sorted export lines with quoted values", () => {
    expect(renderEnvFile({ B: "two words", A: "1", C: "it's" })).toBe(
      "# Trainyard: environment of this attempt (generated). launch.sh sources it with set -a.\n" +
        "export A=1\nexport B='two words'\nexport C='it'\\''s'\n",
    );
  });

  it("refuses invalid keys", () => {
    expect(() => renderEnvFile({ "A-B": "x" })).toThrow(/invalid environment variable name/);
    expect(() => renderEnvFile({ "A;touch x": "x" })).toThrow();
    expect(() => renderEnvFile({ "1A": "x" })).toThrow();
  });

  it("round-trips hostile values through a real sh", () => {
    const value = "$(echo pwned) `echo pwned` ; && | 'single' \"double\" \\ \nsecond line\n\ttab ✓";
    const f = join(root, "envfile");
    writeFileSync(f, renderEnvFile({ X: value, EMPTY: "" }));
    expect(run(`set -a; . ${f}; printf '%s|%s' "$X" "$EMPTY"`)).toBe(`${value}|`);
  });
});

describe("launch.sh, probe and stop on a real local process group", () => {
  it("runs hostile values literally, reports alive, stops on TERM and leaves nothing", async () => {
    const canary = join(root, "canary");
    const x = `$(touch ${canary}) \`touch ${canary}\` ; touch ${canary} && 'single' "double" \\\nsecond line`;
    const { dir, attemptId } = launch(["sh", "-c", 'echo "$X"; echo "arg=$1"; sleep 30', "argv0", `it's $(touch ${canary})`], {
      X: x,
    });

    await waitFor(
      "the program's output",
      () => existsSync(join(dir, "output.log")) && readFileSync(join(dir, "output.log"), "utf8").includes("arg="),
    );
    const p = probe(dir);
    expect(p.started).toBe(true);
    expect(p.pgid).toBe(Number(readFileSync(join(dir, "pid"), "utf8")));
    expect(p.alive).toBe(true);
    expect(p.exitCode).toBeUndefined();
    const expected = `${x}\narg=it's $(touch ${canary})\n`;
    expect(p.logTail).toBe(expected);
    expect(p.logSize).toBe(Buffer.byteLength(expected));
    expect(readFileSync(join(dir, "output.log"), "utf8")).toBe(expected);

    const before = survivors(dir, attemptId);
    expect(before).toContain(p.pgid);
    expect(before.length).toBeGreaterThanOrEqual(2); // the wrapper and the program

    const signalled = parseSurvivors(run(stopCommand(dir, attemptId, "TERM")));
    expect(signalled.length).toBeGreaterThan(0);
    await waitFor("no survivors", () => survivors(dir, attemptId).length === 0);
    for (const pid of before) expect(exists(pid)).toBe(false);

    // The wrapper outlived the program long enough to record how it ended.
    const after = await waitFor("exit_code", () => {
      const r = probe(dir);
      return r.exitCode !== undefined ? r : undefined;
    });
    expect(after.alive).toBe(false);
    expect(after.exitCode).toBe(143);
    expect(existsSync(canary)).toBe(false);
  });

  it("a program that ignores TERM survives it and dies on KILL, leaving no exit_code", async () => {
    const { dir, attemptId } = launch(["sh", "-c", "trap '' TERM; echo ready; sleep 30"]);
    await waitFor(
      "ready",
      () => existsSync(join(dir, "output.log")) && readFileSync(join(dir, "output.log"), "utf8").includes("ready"),
    );
    run(stopCommand(dir, attemptId, "TERM"));
    await new Promise((r) => setTimeout(r, 300));
    expect(survivors(dir, attemptId).length).toBeGreaterThan(0);
    run(stopCommand(dir, attemptId, "KILL"));
    await waitFor("no survivors", () => survivors(dir, attemptId).length === 0);
    expect(probe(dir)).toMatchObject({ started: true, alive: false });
    expect(probe(dir).exitCode).toBeUndefined();
  });

  it("records a non-zero exit status", async () => {
    const { dir } = launch(["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    const p = await waitFor("exit", () => {
      const r = probe(dir);
      return r.exitCode !== undefined ? r : undefined;
    });
    expect(p).toMatchObject({ started: true, alive: false, exitCode: 3, logTail: "hi\noops\n", logSize: 8 });
    expect(readdir(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  it("finds and kills a process that left the group with setsid but carries the attempt id", async () => {
    const { dir, attemptId } = launch(["sh", "-c", "setsid sleep 60 & echo $! > escaped.pid; wait"]);
    const escaped = await waitFor("escaped pid", () => {
      const f = join(dir, "escaped.pid");
      return existsSync(f) && readFileSync(f, "utf8").trim() ? Number(readFileSync(f, "utf8")) : undefined;
    });
    const pgid = Number(readFileSync(join(dir, "pid"), "utf8"));
    await waitFor("setsid to take effect", () => readFileSync(`/proc/${escaped}/stat`, "utf8").includes("sleep"));
    const pgrpOf = (pid: number) =>
      Number(
        readFileSync(`/proc/${pid}/stat`, "utf8")
          .replace(/^.*\) /s, "")
          .split(" ")[2],
      );
    expect(pgrpOf(escaped)).not.toBe(pgid);
    expect(survivors(dir, attemptId)).toContain(escaped);

    run(stopCommand(dir, attemptId, "TERM"));
    await waitFor("no survivors", () => survivors(dir, attemptId).length === 0);
    expect(exists(escaped)).toBe(false);
  });

  it("matches the attempt id exactly, not as a prefix", async () => {
    const a = launch(["sleep", "30"]);
    // A second attempt whose id extends the first one's: att-…-N0 vs att-…-N.
    const bId = `${a.attemptId}0`;
    const bDir = attemptDir(root, "job1", bId);
    mkdirSync(bDir, { recursive: true });
    writeFileSync(join(bDir, "env"), renderEnvFile({ TRAINYARD_ATTEMPT_ID: bId }));
    writeFileSync(join(bDir, "launch.sh"), renderLaunchScript({ dir: bDir, workdir: bDir, argv: ["sleep", "30"] }));
    run(startCommand(bDir));
    started.push({ dir: bDir, attemptId: bId });
    await waitFor("both started", () => probe(a.dir).alive && probe(bDir).alive);

    const bPids = survivors(bDir, bId);
    run(stopCommand(a.dir, a.attemptId, "KILL"));
    await waitFor("a stopped", () => survivors(a.dir, a.attemptId).length === 0);
    expect(survivors(bDir, bId)).toEqual(bPids);
    expect(probe(bDir).alive).toBe(true);
  });

  it("parses metrics lines and skips bad ones", async () => {
    const script = [
      'echo \'{"step":1,"loss":0.9}\' >> "$TRAINYARD_METRICS_FILE"',
      'echo "not json" >> "$TRAINYARD_METRICS_FILE"',
      "echo '[1,2]' >> \"$TRAINYARD_METRICS_FILE\"",
      'echo \'{"step":2,"total_steps":10,"loss":0.5}\' >> "$TRAINYARD_METRICS_FILE"',
      'printf \'{"step":3,"lo\' >> "$TRAINYARD_METRICS_FILE"',
    ].join("; ");
    const { dir } = launch(["sh", "-c", script]);
    const p = await waitFor("exit", () => {
      const r = probe(dir);
      return r.exitCode !== undefined ? r : undefined;
    });
    expect(p.exitCode).toBe(0);
    expect(p.metrics).toEqual([
      { step: 1, loss: 0.9 },
      { step: 2, total_steps: 10, loss: 0.5 },
    ]);
    expect(parseProbe(run(probeCommand(dir, { logTailBytes: 0, metricsLines: 2 }))).metrics).toEqual([
      { step: 2, total_steps: 10, loss: 0.5 },
    ]);
  });

  it("runs the program once even when started twice", async () => {
    const { dir } = launch(["sh", "-c", "echo run >> runs; sleep 1"]);
    run(startCommand(dir));
    await waitFor("exit", () => probe(dir).exitCode !== undefined);
    expect(readFileSync(join(dir, "runs"), "utf8")).toBe("run\n");
    expect(readFileSync(join(dir, "output.log"), "utf8")).toMatch(/already started/);
  });

  it("refuses to run outside a process group of its own", () => {
    const { dir } = launch(["sh", "-c", "echo ran"], {}, { start: false });
    // Spawned by node without setsid: the shell is not a group leader.
    const r = spawnSync("/bin/sh", [join(dir, "launch.sh")]);
    expect(r.status).toBe(125);
    expect(existsSync(join(dir, "pid"))).toBe(false);
    expect(readFileSync(join(dir, "output.log"), "utf8")).toMatch(/must be started with setsid/);
  });

  it("records 125 when the workdir is missing", async () => {
    const { dir } = launch(["sh", "-c", "echo ran"], {}, { workdir: "/nonexistent/trainyard" });
    const p = await waitFor("exit", () => {
      const r = probe(dir);
      return r.exitCode !== undefined ? r : undefined;
    });
    expect(p.exitCode).toBe(125);
    expect(p.logTail).toMatch(/cannot cd to workdir/);
    expect(p.logTail).not.toMatch(/ran/);
  });

  it("reports a directory that was never started", () => {
    const dir = attemptDir(root, "job1", "never-started");
    mkdirSync(dir, { recursive: true });
    expect(probe(dir)).toEqual({ started: false, alive: false, logSize: 0, logTail: "", metrics: [] });
    expect(survivors(dir, "never-started")).toEqual([]);
    expect(parseSurvivors(run(stopCommand(dir, "never-started", "TERM")))).toEqual([]);
  });

  it("logReadCommand reads raw bytes from an offset", () => {
    const dir = attemptDir(root, "job1", "logread");
    mkdirSync(dir, { recursive: true });
    expect(run(logReadCommand(dir, 0, 100))).toBe("");
    writeFileSync(join(dir, "output.log"), "0123456789\nabc ✓\n");
    expect(run(logReadCommand(dir, 0, 4))).toBe("0123");
    expect(run(logReadCommand(dir, 11, 100))).toBe("abc ✓\n");
    expect(run(logReadCommand(dir, 100, 100))).toBe("");
  });
});

describe("parseProbe", () => {
  it("refuses cut-off output", () => {
    expect(() => parseProbe("")).toThrow(/incomplete/);
    expect(() => parseProbe("@@trainyard-probe 1\n@@alive 0\n")).toThrow(/incomplete/);
  });

  it("parses every section", () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const out = [
      "@@trainyard-probe 1",
      "@@pgid 4242",
      "@@alive 1",
      "@@exit 7",
      "@@logsize    12",
      `@@logtail ${b64("tail\n@@end\n")}`,
      `@@metrics ${b64('{"step":5}\n')}`,
      "@@end",
      "",
    ].join("\n");
    expect(parseProbe(out)).toEqual({
      started: true,
      pgid: 4242,
      alive: true,
      exitCode: 7,
      logSize: 12,
      logTail: "tail\n@@end\n",
      metrics: [{ step: 5 }],
    });
  });
});

describe("input checks", () => {
  it("refuses relative directories and odd attempt ids", () => {
    expect(() => startCommand("relative/dir")).toThrow(/absolute/);
    expect(() => stopCommand("/a/b", "x y", "TERM")).toThrow(/attempt id/);
    expect(() => probeCommand("/a/b/x'y", { logTailBytes: 1, metricsLines: 1 })).toThrow(/attempt id/);
    expect(() => logReadCommand("/a", -1, 1)).toThrow(/non-negative/);
  });

  it("quotes the directory in every command", () => {
    expect(startCommand("/srv/ty/jobs/j/a/")).toBe("setsid -f /bin/sh /srv/ty/jobs/j/a/launch.sh </dev/null >/dev/null 2>&1");
    expect(startCommand("/srv/my dir/a")).toBe("setsid -f /bin/sh '/srv/my dir/a/launch.sh' </dev/null >/dev/null 2>&1");
  });
});

function readdir(dir: string): string[] {
  return execFileSync("ls", ["-A", dir], { encoding: "utf8" }).split("\n").filter(Boolean);
}

describe("probe telemetry: GPUs through nvidia-smi on the given PATH, and the attempt's processes", () => {
  it("samples each GPU's utilisation, memory, temperature, power and fault counters, and the process CPU/memory", async () => {
    const bin = mkdtempSync(join(tmpdir(), "trainyard-smi-"));
    writeFileSync(
      join(bin, "nvidia-smi"),
      `#!/bin/sh
case "$1" in --query-gpu=*) ;; *) exit 0 ;; esac
echo "0, 87, 30001, 81559, 64, 312.45, 0, [N/A], No"
echo "1, [N/A], 12, 81559, 41, [N/A], 3, [N/A], No"
`,
      { mode: 0o755 },
    );
    const { dir } = launch(["sh", "-c", "sleep 30"]);
    await waitFor("the attempt to run", () => probe(dir).alive);
    const p = parseProbe(
      run(probeCommand(dir, { logTailBytes: 64, metricsLines: 1, telemetry: { path: `${bin}:/usr/bin:/bin` } })),
    );
    expect(p.alive).toBe(true);
    expect(p.telemetry?.gpus).toEqual([
      { index: 0, utilPct: 87, memUsedMiB: 30001, memTotalMiB: 81559, tempC: 64, powerW: 312.45 },
      { index: 1, memUsedMiB: 12, memTotalMiB: 81559, tempC: 41 },
    ]);
    expect(p.telemetry?.health).toEqual([
      { index: 0, eccUncorrected: 0, remappedRowsFailure: false },
      { index: 1, eccUncorrected: 3, remappedRowsFailure: false },
    ]);
    expect(p.telemetry?.proc?.rssMiB).toBeGreaterThanOrEqual(0);
    expect(p.telemetry?.proc?.cpuPct).toBeGreaterThanOrEqual(0);

    // Without nvidia-smi on the PATH: no GPU samples and no error, the process sample still there.
    const none = parseProbe(run(probeCommand(dir, { logTailBytes: 64, metricsLines: 1, telemetry: { path: "/nonexistent" } })));
    expect(none.telemetry).toMatchObject({ gpus: [], health: [] });
    expect(none.telemetry?.error).toBeUndefined();
    expect(none.telemetry?.proc).toBeDefined();
    rmSync(bin, { recursive: true, force: true });
  });
});
