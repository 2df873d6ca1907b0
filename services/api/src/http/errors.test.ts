import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, jobSpecSchema, UserError } from "@trainyard/common";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { errorHandler, formatIssues, formatPath, notFoundHandler, requireJsonBody, toHttpError, UpstreamError } from "./errors";

describe("toHttpError", () => {
  it("maps UserError to its status, message and details", () => {
    expect(toHttpError(new UserError(409, "taken", { a: 1 }))).toEqual({
      status: 409,
      body: { error: { message: "taken", details: { a: 1 } } },
      internal: false,
    });
    expect(toHttpError(new UserError(404, "job 'x' not found")).body).toEqual({ error: { message: "job 'x' not found" } });
  });

  it("maps zod errors to 400 with one 'path: message' per issue", () => {
    const r = jobSpecSchema.safeParse({
      name: "a b",
      framework: "pytorch",
      cluster: "c",
      resources: { nodes: "2", gpusPerNode: 1 },
      command: ["x"],
    });
    expect(r.success).toBe(false);
    const mapped = toHttpError(r.error);
    expect(mapped.status).toBe(400);
    expect(mapped.body.error.message).toMatch(/^name: must be 1-63 characters/);
    expect(mapped.body.error.message).toContain("resources.nodes: ");
    expect(mapped.body.error.details).toHaveLength(2);
  });

  it("writes paths like JavaScript, quoting odd keys", () => {
    expect(formatPath(["resources", "nodes"])).toBe("resources.nodes");
    expect(formatPath(["command", 0])).toBe("command[0]");
    expect(formatPath(["files", "../x"])).toBe('files["../x"]');
    expect(formatPath(["env", "A-B"])).toBe('env["A-B"]');
    expect(formatPath([])).toBe("");
  });

  it("names the key of an unknown field", () => {
    const r = z.object({ a: z.number() }).strict().safeParse({ a: 1, bogus: 2 });
    expect(formatIssues(r.error!.issues)).toContain("bogus");
  });

  it("maps body-parser errors", () => {
    const parse = Object.assign(new SyntaxError("Unexpected token } in JSON at position 9"), {
      type: "entity.parse.failed",
      status: 400,
      expose: true,
    });
    expect(toHttpError(parse)).toMatchObject({
      status: 400,
      body: { error: { message: "invalid JSON: Unexpected token } in JSON at position 9" } },
    });
    const large = Object.assign(new Error("request entity too large"), {
      type: "entity.too.large",
      status: 413,
      expose: true,
      limit: 1024,
    });
    expect(toHttpError(large)).toMatchObject({
      status: 413,
      body: { error: { message: "request body is larger than the limit of 1024 bytes" } },
    });
  });

  it("maps UpstreamError to 502", () => {
    expect(toHttpError(new UpstreamError("node n1 unreachable"))).toMatchObject({
      status: 502,
      body: { error: { message: "node n1 unreachable" } },
    });
  });

  it("maps a transient database error to 503 with Retry-After, never 'internal error'", () => {
    const transient = [
      new Error("database is locked (SQLITE_BUSY)"),
      new Error("ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)"),
      Object.assign(new Error("WriteConflict"), { code: 112 }),
      Object.assign(new Error("Server selection timed out after 10000 ms"), { name: "MongoServerSelectionError" }),
      Object.assign(new Error("connection 3 to 127.0.0.1:27027 closed"), { name: "MongoNetworkError" }),
    ];
    for (const err of transient) {
      const mapped = toHttpError(err);
      expect(mapped.status, err.message).toBe(503);
      expect(mapped.headers).toEqual({ "Retry-After": "1" });
      expect(mapped.internal).toBe(false);
      expect(mapped.body.error.message).not.toContain("SQLITE");
    }
    // A plain bug stays a 500.
    expect(toHttpError(new Error("cannot read properties of undefined")).status).toBe(500);
  });

  it("maps Redis being down or silent to 503 with Retry-After 5, never 'internal error'", () => {
    const down = [
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error("Command timed out"),
      new Error("Connection is closed."),
      Object.assign(new Error("Reached the max retries per request limit (which is 0)."), { name: "MaxRetriesPerRequestError" }),
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6399"), { code: "ECONNREFUSED" }),
    ];
    for (const err of down) {
      const mapped = toHttpError(err);
      expect(mapped.status, err.message).toBe(503);
      expect(mapped.headers).toEqual({ "Retry-After": "5" });
      expect(mapped.internal).toBe(false);
      expect(mapped.body.error.message).toContain("Redis");
    }
  });

  it("hides everything else behind 500 'internal error'", () => {
    const err = new Error("connection string mongodb://user:secret@host");
    const mapped = toHttpError(err);
    expect(mapped).toEqual({ status: 500, body: { error: { message: "internal error" } }, internal: true });
    expect(JSON.stringify(mapped.body)).not.toContain("secret");
    expect(toHttpError("a string").status).toBe(500);
    // An error that merely looks like an HTTP error but is a 5xx stays internal.
    expect(toHttpError(Object.assign(new Error("x"), { type: "x", status: 503 })).status).toBe(500);
  });
});

describe("error middleware over HTTP", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const app = express();
    app.use(requireJsonBody);
    app.use(express.json({ limit: 1024 }));
    app.post("/echo", (req, res) => {
      res.json(z.object({ n: z.number() }).strict().parse(req.body));
    });
    app.get("/boom", async () => {
      throw new Error("secret internals");
    });
    app.get("/busy", async () => {
      throw new Error("(NotImplemented) database is locked (SQLITE_BUSY)");
    });
    app.get("/user", () => {
      throw new UserError(422, "nope");
    });
    app.use(notFoundHandler);
    app.use(errorHandler(createLogger("api-test", "silent")));
    await new Promise<void>((resolve) => {
      server = app.listen(0, "127.0.0.1", () => resolve());
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (body: string, type = "application/json") =>
    fetch(`${url}/echo`, { method: "POST", headers: { "content-type": type }, body });
  // biome-ignore lint/suspicious/noExplicitAny: response bodies of the tests
  const json = async (res: Response): Promise<any> => res.json();

  it("passes valid JSON", async () => {
    const res = await post('{"n":1}');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ n: 1 });
  });

  it("400 for malformed JSON", async () => {
    const res = await post('{"n":');
    expect(res.status).toBe(400);
    expect((await json(res)).error.message).toMatch(/^invalid JSON: /);
  });

  it("400 listing the field for a schema error", async () => {
    const res = await post('{"n":"1","x":2}');
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error.message).toContain("n: ");
    expect(body.error.message).toContain('"x"');
    expect(Array.isArray(body.error.details)).toBe(true);
  });

  it("413 for a body over the limit", async () => {
    const res = await post(JSON.stringify({ n: 1, pad: "x".repeat(4096) }));
    expect(res.status).toBe(413);
    expect((await json(res)).error.message).toContain("1024");
  });

  it("415 for a non-JSON body", async () => {
    const res = await post("n=1", "text/plain");
    expect(res.status).toBe(415);
    expect((await json(res)).error.message).toContain("text/plain");
  });

  it("JSON 404 for unknown routes", async () => {
    const res = await fetch(`${url}/nowhere`);
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({ error: { message: "no route for GET /nowhere" } });
  });

  it("503 with Retry-After for a busy database", async () => {
    const res = await fetch(`${url}/busy`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toEqual({ error: { message: "the database is busy or unavailable; retry the request" } });
  });

  it("500 without internals for unexpected errors; UserError keeps its status", async () => {
    const res = await fetch(`${url}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { message: "internal error" } });
    expect(text).not.toContain("secret");
    expect((await fetch(`${url}/user`)).status).toBe(422);
  });
});
