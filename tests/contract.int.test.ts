import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ApiConfig, startApi } from "@trainyard/api";
import { apiConfigShape, createLogger, loadConfig } from "@trainyard/common";
import { connectMongo } from "@trainyard/db";
import { loadInfra } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const TOOLS_JSON = join(process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra", "tools.json");

/** Run a command, collecting its output; resolves with the exit code. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * Schemathesis (from PyPI, installed by scripts/infra/tools.sh) against the live API, driven by
 * the API's own /openapi.json: generated valid and invalid requests for every operation, with and
 * without the key. It fails on any 5xx, any response whose status, content type or body the
 * document does not allow, and any operation that answers without authentication.
 */
describe("the API contract under generated input (Schemathesis)", () => {
  let config: ApiConfig;
  let api: Awaited<ReturnType<typeof startApi>>;
  let reportDir: string;
  const token = `contract-${randomBytes(16).toString("hex")}`;

  beforeAll(async () => {
    const infra = loadInfra();
    const id = randomBytes(4).toString("hex");
    config = loadConfig(apiConfigShape, {
      REDIS_URL: infra.redisUrl,
      MONGO_URL: infra.mongoUrl,
      MONGO_DB: `ty_contract_${id}`,
      TRAINYARD_QUEUE_PREFIX: `tycontract-${id}`,
      TRAINYARD_SECRET_KEY: randomBytes(32).toString("base64"),
      API_ADMIN_TOKEN: token,
      API_RATE_LIMIT: "1000000",
      // Generated clusters name hosts that do not exist: give up on them quickly.
      SSH_CONNECT_TIMEOUT_MS: "1000",
      PORT: "0",
      HOST: "127.0.0.1",
    });
    api = await startApi(config, createLogger("api", "silent"));
    reportDir = mkdtempSync(join(tmpdir(), "ty-contract-"));
  });
  afterAll(async () => {
    await api?.close();
    const conn = await connectMongo(config.MONGO_URL, config.MONGO_DB);
    await conn.dropDatabase();
    await conn.close();
    if (reportDir) rmSync(reportDir, { recursive: true, force: true });
  });

  it("no 5xx, no response outside the schema, authentication never ignored", async () => {
    expect(existsSync(TOOLS_JSON), `${TOOLS_JSON} missing: run scripts/infra/tools.sh`).toBe(true);
    const st = (JSON.parse(readFileSync(TOOLS_JSON, "utf8")) as { schemathesis: string }).schemathesis;
    const junit = join(reportDir, "junit.xml");
    const { code, output } = await run(
      st,
      [
        "run",
        `${api.url}/openapi.json`,
        "--header",
        `Authorization: Bearer ${token}`,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--seed",
        "20261128",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        junit,
      ],
      // Schemathesis keeps a cache in its working directory: the report directory, not the repository.
      reportDir,
      540_000,
    );
    // On failure: Schemathesis' FAILURES section (each with a curl command to reproduce), then its summary.
    const failures = output.indexOf("FAILURES");
    const summary = `${failures >= 0 ? output.slice(failures, failures + 12_000) : ""}\n…\n${output.split("\n").slice(-40).join("\n")}`;
    // What was exercised, for the CI log (phases, operations, generated cases).
    const summaryAt = output.indexOf("SUMMARY");
    if (summaryAt >= 0) console.log(`[schemathesis] ${output.slice(summaryAt).trim()}`);
    expect(code, summary).toBe(0);
    // It really exercised the API: every operation appears in the report.
    const report = readFileSync(junit, "utf8");
    const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    expect((report.match(/<testcase /g) ?? []).length).toBeGreaterThanOrEqual(operations);
  }, 600_000);
});
