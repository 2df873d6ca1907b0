import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_PATH, consoleApp } from "./console";

describe("console static serving", () => {
  let dir: string;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ty-console-"));
    mkdirSync(join(dir, "assets"));
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>console</title>");
    writeFileSync(join(dir, "assets", "main-ABC123.js"), "console.log(1)");
    const app = express();
    app.use(CONSOLE_PATH, consoleApp(dir));
    app.use(`${CONSOLE_PATH}-missing`, consoleApp(join(dir, "nope")));
    await new Promise<void>((resolve) => {
      server = app.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves hashed assets cached for good, with a strict CSP", async () => {
    const res = await fetch(`${url}/ui/assets/main-ABC123.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
  });

  it("answers every app path with index.html, revalidated each time", async () => {
    for (const path of ["/ui", "/ui/", "/ui/jobs", "/ui/jobs/0123456789abcdef01234567"]) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(await res.text()).toContain("<title>console</title>");
    }
  });

  it("a missing asset is a JSON 404, not the app; a missing build says how to build it", async () => {
    const res = await fetch(`${url}/ui/assets/main-OLD.js`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { message: "no such console asset" } });
    const unbuilt = await fetch(`${url}/ui-missing/jobs`);
    expect(unbuilt.status).toBe(503);
    expect(((await unbuilt.json()) as { error: { message: string } }).error.message).toContain(
      "pnpm --filter @trainyard/console build",
    );
  });

  it("refuses writes", async () => {
    expect((await fetch(`${url}/ui/jobs`, { method: "POST" })).status).toBe(404);
  });
});
