import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildProgram } from "./cli";
import { apiErrorOf, query } from "./client";
import { bashCompletion, completionTable } from "./completion";
import { configPath, readConfig, removeContext, resolveContext, setContext, writeConfig } from "./config";
import { CliError, EXIT, exitCodeForHttpStatus, exitCodeForStatus } from "./exit";
import { duration, LineBuffer, lastLines, monthRange, progressText, table } from "./format";
import type { Io } from "./io";
import { formatEnvFile, parseEnvFile } from "./platform-state";
import { loadClusterSpec, loadJobSpec } from "./specs";
import { parseSse, SseParser } from "./sse";

const tmp = () => mkdtempSync(join(tmpdir(), "ty-cli-"));

function captureIo(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    json: (v) => stdout.push(JSON.stringify(v)),
    isTty: false,
  };
}

/** Runs the real command tree in-process (no API needed for these commands). */
async function run(args: string[], env: NodeJS.ProcessEnv) {
  const io = captureIo();
  const { program, result } = buildProgram({ io, env, signal: new AbortController().signal });
  program.exitOverride();
  let code = 0;
  try {
    await program.parseAsync(["node", "trainyard", ...args]);
    code = result.code;
  } catch (err) {
    code = err instanceof CliError ? err.code : EXIT.USAGE;
    if (err instanceof CliError) io.err(err.message);
  }
  return { code, stdout: io.stdout.join("\n"), stderr: io.stderr.join("\n") };
}

describe("config", () => {
  it("lives in XDG_CONFIG_HOME or ~/.config, or TRAINYARD_CONFIG", () => {
    expect(configPath({ HOME: "/h" })).toBe("/h/.config/trainyard/config.json");
    expect(configPath({ HOME: "/h", XDG_CONFIG_HOME: "/x" })).toBe("/x/trainyard/config.json");
    expect(configPath({ TRAINYARD_CONFIG: "/c.json" })).toBe("/c.json");
  });

  it("is written 0600 in a 0700 folder and read back", () => {
    const path = join(tmp(), "sub", "config.json");
    const c = setContext({ contexts: {} }, "prod", { url: "http://a:1", token: "tyk_x" });
    writeConfig(path, c);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, "..")).mode & 0o777).toBe(0o700);
    expect(readConfig(path)).toEqual({ current: "prod", contexts: { prod: { url: "http://a:1", token: "tyk_x" } } });
  });

  it("refuses a broken file with its path", () => {
    const path = join(tmp(), "config.json");
    writeFileSync(path, "{nope");
    expect(() => readConfig(path)).toThrow(/config.json is not valid JSON/);
    writeFileSync(path, JSON.stringify({ contexts: { a: { url: "not a url", token: "t" } } }));
    expect(() => readConfig(path)).toThrow(/contexts.a.url/);
  });

  it("resolves --context, then TRAINYARD_CONTEXT, then the current one; env URL/token override", () => {
    let c = setContext({ contexts: {} }, "a", { url: "http://a/", token: "ta" });
    c = setContext(c, "b", { url: "http://b", token: "tb" }, false);
    expect(resolveContext(c, undefined, {})).toMatchObject({ url: "http://a", token: "ta", context: "a" });
    expect(resolveContext(c, "b", {})).toMatchObject({ url: "http://b", token: "tb", context: "b" });
    expect(resolveContext(c, undefined, { TRAINYARD_CONTEXT: "b" })).toMatchObject({ token: "tb" });
    expect(resolveContext(c, "b", { TRAINYARD_TOKEN: "envtok" })).toMatchObject({
      url: "http://b",
      token: "envtok",
      source: { url: "context", token: "env" },
    });
    expect(resolveContext({ contexts: {} }, undefined, { TRAINYARD_URL: "http://e", TRAINYARD_TOKEN: "t" })).toMatchObject({
      url: "http://e",
    });
    expect(() => resolveContext(c, "zz", {})).toThrow(/no context named 'zz'/);
    const notLoggedIn = (() => {
      try {
        resolveContext({ contexts: {} }, undefined, {});
      } catch (e) {
        return e as CliError;
      }
    })();
    expect(notLoggedIn?.code).toBe(EXIT.AUTH);
    expect(removeContext(c, "a")).toEqual({ contexts: { b: { url: "http://b", token: "tb" } } });
    expect(() => setContext(c, "bad name", { url: "http://x", token: "t" })).toThrow(/context name/);
  });
});

describe("exit codes and API errors", () => {
  it("maps job outcomes and HTTP statuses", () => {
    expect(exitCodeForStatus("SUCCEEDED")).toBe(0);
    expect(exitCodeForStatus("FAILED")).toBe(1);
    expect(exitCodeForStatus("CANCELLED")).toBe(7);
    expect(exitCodeForStatus("STOPPED_BUDGET")).toBe(8);
    expect([400, 401, 403, 404, 409, 502].map(exitCodeForHttpStatus)).toEqual([3, 4, 4, 5, 3, 6]);
  });

  it("shows the API's error as it came: status and message", () => {
    const e = apiErrorOf(409, JSON.stringify({ error: { message: "job is already SUCCEEDED" } }));
    expect(e.message).toBe("409 job is already SUCCEEDED");
    expect(e.code).toBe(EXIT.REFUSED);
    expect(apiErrorOf(502, "Bad Gateway\n<html>").message).toBe("502 Bad Gateway");
  });

  it("builds query strings without empty values", () => {
    expect(query({ a: "x y", b: undefined, c: 3, d: "" })).toBe("?a=x%20y&c=3");
    expect(query({})).toBe("");
  });
});

describe("formatting", () => {
  it("pads tables and formats durations, progress, months, tails", () => {
    expect(
      table(
        ["A", "LONGER"],
        [
          ["xx", 1],
          [undefined, "z"],
        ],
      ),
    ).toBe("A   LONGER\nxx  1\n-   z");
    expect([3, 75, 7300, 90_000].map(duration)).toEqual(["3s", "1m15s", "2h01m", "1d01h"]);
    expect(progressText({ step: 7, totalSteps: 40, ratio: 0.175, loss: 9.19571, updatedAt: "" })).toBe(
      "step 7/40 (18%) loss 9.1957",
    );
    expect(progressText(undefined)).toBe("-");
    expect(monthRange("2026-12")).toEqual({ from: "2026-12-01T00:00:00.000Z", to: "2027-01-01T00:00:00.000Z" });
    expect(() => monthRange("2026-13")).toThrow(/YYYY-MM/);
    expect(lastLines("a\nb\nc\n", 2)).toBe("b\nc\n");
    expect(lastLines("a\nb\nc", 1)).toBe("c");
    expect(lastLines("a\n", 0)).toBe("");
    const lb = new LineBuffer();
    expect(lb.push("ab")).toEqual([]);
    expect(lb.push("c\nd\ne")).toEqual(["abc", "d"]);
    expect(lb.flush()).toEqual(["e"]);
  });
});

describe("server-sent events", () => {
  it("parses events, multi-line data, ids and comments across chunk boundaries", async () => {
    const text = ": following log\n\nid: 12\nevent: log\ndata: step 1\ndata: step 2\ndata: \n\nevent: end\ndata: SUCCEEDED\n\n";
    const bytes = new TextEncoder().encode(text);
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 7) yield bytes.slice(i, i + 7);
    }
    const events = [];
    for await (const ev of parseSse(chunks())) events.push(ev);
    expect(events).toEqual([
      { event: "log", data: "step 1\nstep 2\n", id: "12" },
      { event: "end", data: "SUCCEEDED" },
    ]);
    expect(new SseParser().line("")).toBeUndefined();
  });
});

describe("spec files", () => {
  it("inlines @files of a job spec relative to it, YAML or JSON, and checks it with the API's schema", () => {
    const d = tmp();
    mkdirSync(join(d, "src"));
    writeFileSync(join(d, "src", "train.py"), "print(1)\n");
    writeFileSync(
      join(d, "job.yaml"),
      "name: j\nframework: pytorch\ncluster: c\nresources: {nodes: 2, gpusPerNode: 1}\ncommand: [python3, train.py]\nfiles:\n  train.py: '@src/train.py'\n",
    );
    expect(loadJobSpec(join(d, "job.yaml")).files).toEqual({ "train.py": "print(1)\n" });
    writeFileSync(
      join(d, "job.json"),
      JSON.stringify({
        name: "j",
        framework: "pytorch",
        cluster: "c",
        resources: { nodes: 1, gpusPerNode: 1 },
        command: ["x"],
        files: ["src/train.py"],
      }),
    );
    expect(loadJobSpec(join(d, "job.json"), { name: "other" })).toMatchObject({
      name: "other",
      files: { "src/train.py": "print(1)\n" },
    });
    writeFileSync(
      join(d, "bad.yaml"),
      "name: j\nframework: jax\ncluster: c\nresources: {nodes: 1, gpusPerNode: 1}\ncommand: [x]\n",
    );
    expect(() => loadJobSpec(join(d, "bad.yaml"))).toThrow(/invalid job spec: framework: unknown framework "jax"/);
    writeFileSync(join(d, "missing.yaml"), "name: j\nfiles: {a.py: '@nope.py'}\n");
    expect(() => loadJobSpec(join(d, "missing.yaml"))).toThrow(/files.a.py: cannot read .*nope.py: ENOENT/);
    expect(() => loadJobSpec(join(d, "absent.yaml"))).toThrow(/cannot read .*absent.yaml: ENOENT/);
    writeFileSync(join(d, "list.yaml"), "- a\n");
    expect(() => loadJobSpec(join(d, "list.yaml"))).toThrow(/must hold one object/);
  });

  it("reads a cluster's private key from ssh.privateKeyFile, never inline, and never echoes it", () => {
    const d = tmp();
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretbytes\n-----END OPENSSH PRIVATE KEY-----\n";
    writeFileSync(join(d, "id"), key, { mode: 0o600 });
    const base = "name: c\nnodes:\n  - {name: n1, host: 10.0.0.1, user: u, gpus: 1, workRoot: /w}\n";
    writeFileSync(join(d, "c.yaml"), `${base}ssh:\n  privateKeyFile: id\n  hostKeys: {n1: "SHA256:${"A".repeat(43)}"}\n`);
    const spec = loadClusterSpec(join(d, "c.yaml")) as { ssh: Record<string, unknown> };
    expect(spec.ssh.privateKey).toBe(key);
    expect(spec.ssh.privateKeyFile).toBeUndefined();
    writeFileSync(join(d, "inline.yaml"), `${base}ssh:\n  privateKey: "${key.replace(/\n/g, "\\n")}"\n`);
    expect(() => loadClusterSpec(join(d, "inline.yaml"))).toThrow(/not written inline.*privateKeyFile/);
    writeFileSync(join(d, "nopin.yaml"), `${base}ssh:\n  privateKeyFile: id\n`);
    let message = "";
    try {
      loadClusterSpec(join(d, "nopin.yaml"));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/node 'n1' has no pinned host key/);
    expect(message).not.toContain("secretbytes");
    writeFileSync(join(d, "nokey.yaml"), `${base}ssh:\n  privateKeyFile: nope\n`);
    expect(() => loadClusterSpec(join(d, "nokey.yaml"))).toThrow(/ssh.privateKeyFile: cannot read .*nope: ENOENT/);
  });
});

describe("platform env file", () => {
  it("round-trips and refuses values that would break it", () => {
    const env = { A_B: "redis://x:1", C: "a=b" };
    expect(parseEnvFile(formatEnvFile(env))).toEqual(env);
    expect(() => formatEnvFile({ A: "x\ny" })).toThrow(/cannot store A/);
  });
});

describe("command line", () => {
  it("manages contexts without printing keys", async () => {
    const d = tmp();
    const env = { TRAINYARD_CONFIG: join(d, "config.json") };
    writeConfig(
      env.TRAINYARD_CONFIG,
      setContext(setContext({ contexts: {} }, "a", { url: "http://a", token: "tyk_secret_a" }), "b", {
        url: "http://b",
        token: "tyk_secret_b",
      }),
    );
    const ls = await run(["context", "ls", "--json"], env);
    expect(JSON.parse(ls.stdout)).toEqual({
      current: "b",
      items: [
        { name: "a", url: "http://a", current: false },
        { name: "b", url: "http://b", current: true },
      ],
    });
    expect(ls.stdout).not.toContain("secret");
    expect((await run(["context", "use", "a"], env)).code).toBe(0);
    expect((await run(["context", "current"], env)).stdout).toBe("a");
    expect((await run(["--context", "b", "context", "current"], env)).stdout).toBe("b");
    expect((await run(["context", "use", "zz"], env)).code).toBe(EXIT.USAGE);
    expect((await run(["context", "rm", "a"], env)).code).toBe(0);
    expect(Object.keys(JSON.parse(readFileSync(env.TRAINYARD_CONFIG, "utf8")).contexts)).toEqual(["b"]);
  });

  it("exits 2 on bad arguments and 4 when not logged in, before any request", async () => {
    const env = { TRAINYARD_CONFIG: join(tmp(), "none.json") };
    expect((await run(["ps", "--limit", "zero"], env)).code).toBe(EXIT.USAGE);
    expect((await run(["ps", "--status", "DONE"], env)).code).toBe(EXIT.USAGE);
    expect((await run(["logs", "x", "--node", "n1", "--rank", "0"], env)).code).toBe(EXIT.USAGE);
    expect((await run(["frobnicate"], env)).code).toBe(EXIT.USAGE);
    const ps = await run(["ps"], env);
    expect(ps.code).toBe(EXIT.AUTH);
    expect(ps.stderr).toMatch(/not logged in/);
    expect(
      (await run(["costs", "--month", "26-1"], { ...env, TRAINYARD_URL: "http://127.0.0.1:9", TRAINYARD_TOKEN: "t" })).code,
    ).toBe(EXIT.USAGE);
    expect((await run(["completion", "fish"], env)).code).toBe(EXIT.USAGE);
  });

  it("reports an API that cannot be reached as exit 6", async () => {
    const r = await run(["ps"], {
      TRAINYARD_CONFIG: join(tmp(), "c.json"),
      TRAINYARD_URL: "http://127.0.0.1:9",
      TRAINYARD_TOKEN: "t",
    });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toMatch(/cannot reach the API at http:\/\/127.0.0.1:9/);
  });

  it("completes every command, subcommand and option", () => {
    const { program } = buildProgram({ io: captureIo(), env: {}, signal: new AbortController().signal });
    const t = completionTable(program);
    expect(t.get("")).toEqual(expect.arrayContaining(["submit", "logs", "cluster", "platform", "--context"]));
    expect(t.get("cluster")).toEqual(expect.arrayContaining(["add", "check", "ls"]));
    expect(t.get("logs")).toEqual(expect.arrayContaining(["--follow", "-f", "--node", "--rank", "--tail", "--since", "--json"]));
    expect(t.get("platform up")).toEqual(expect.arrayContaining(["--launcher", "--monitor", "--port"]));
    const script = bashCompletion(program);
    expect(script).toContain("complete -o default -F _trainyard trainyard");
    expect(script).toContain('"cluster add")');
  });
});
