import { generateApiKey, secretsEqual } from "@trainyard/common";
import type { ApiKeyDoc, ApiKeyRepo } from "@trainyard/db";
import type { Request, Response } from "express";
import { Types } from "mongoose";
import { describe, expect, it, vi } from "vitest";
import { authenticate, bearerToken, type Principal, requireRole } from "./auth";

describe("secretsEqual", () => {
  it("compares by value whatever the lengths", () => {
    expect(secretsEqual("s3cret-token-0123456789", "s3cret-token-0123456789")).toBe(true);
    expect(secretsEqual("s3cret-token-0123456788", "s3cret-token-0123456789")).toBe(false);
    expect(secretsEqual("", "s3cret-token-0123456789")).toBe(false);
    expect(secretsEqual("s3cret-token-0123456789-and-more", "s3cret-token-0123456789")).toBe(false);
    expect(secretsEqual("ünïcødé", "ünïcødé")).toBe(true);
  });
});

describe("bearerToken", () => {
  it("reads the token of a Bearer header only", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Bearer  abc ")).toBe("abc");
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
  });
});

function fakeRes() {
  return {
    statusCode: 200,
    body: undefined as unknown,
    headers: {} as Record<string, string>,
    locals: {} as Record<string, unknown>,
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    set(k: string, v: string) {
      this.headers[k] = v;
      return this;
    },
    json(b: unknown) {
      this.body = b;
      return this;
    },
  };
}

const NOW = new Date("2026-11-28T12:00:00Z");
const issued = generateApiKey();
/** The issued key with its last character changed: same id, wrong secret. */
const tampered = `${issued.key.slice(0, -1)}${issued.key.endsWith("A") ? "B" : "A"}`;
const keys: Record<string, Partial<ApiKeyDoc>> = {
  [issued.id]: { keyId: issued.id, hash: issued.hash, team: "team-a", role: "member", name: "ci" },
};

async function call(authorization: string | undefined, override: Partial<ApiKeyDoc> = {}) {
  const repo = {
    byKeyId: async (id: string) => (keys[id] ? ({ _id: new Types.ObjectId(), ...keys[id], ...override } as ApiKeyDoc) : null),
    touch: async () => undefined,
  } as unknown as ApiKeyRepo;
  const req = { get: (h: string) => (h.toLowerCase() === "authorization" ? authorization : undefined) } as unknown as Request;
  const res = fakeRes();
  const next = vi.fn();
  await authenticate({ apiKeys: repo }, { bootstrapToken: "the-admin-token-1234", bootstrapTeam: "ops", now: () => NOW })(
    req,
    res as unknown as Response,
    next,
  );
  return { res, next, principal: res.locals.principal as Principal | undefined };
}

describe("authenticate", () => {
  it("the bootstrap token is an operator of the platform team", async () => {
    const { next, principal } = await call("Bearer the-admin-token-1234");
    expect(next).toHaveBeenCalledOnce();
    expect(principal).toEqual({ team: "ops", role: "operator", keyId: "bootstrap", keyName: "bootstrap" });
  });

  it("an issued key acts for its team with its role", async () => {
    const { next, principal } = await call(`Bearer ${issued.key}`);
    expect(next).toHaveBeenCalledOnce();
    expect(principal).toMatchObject({ team: "team-a", role: "member", keyId: issued.id });
  });

  it.each([
    [undefined, /missing bearer token/],
    ["Basic dGhlLWFkbWluLXRva2VuLTEyMzQ=", /missing bearer token/],
    ["Bearer wrong", /malformed API key/],
    [`Bearer ${tampered}`, /invalid API key/],
    [`Bearer ${generateApiKey().key}`, /invalid API key/],
  ])("401 JSON for %s", async (header, message) => {
    const { res, next } = await call(header);
    expect(next).not.toHaveBeenCalled();
    expect(res.statusCode).toBe(401);
    expect(res.body).toMatchObject({ error: { message: expect.stringMatching(message) } });
    expect(res.headers["WWW-Authenticate"]).toMatch(/^Bearer/);
    expect(res.locals.principal).toBeUndefined();
  });

  it("401 for a revoked or expired key, named only to the key's holder", async () => {
    const revoked = await call(`Bearer ${issued.key}`, { revokedAt: new Date(NOW.getTime() - 1000) });
    expect(revoked.res.statusCode).toBe(401);
    expect(revoked.res.body).toMatchObject({ error: { message: "API key revoked" } });
    const expired = await call(`Bearer ${issued.key}`, { expiresAt: NOW });
    expect(expired.res.body).toMatchObject({ error: { message: "API key expired" } });
    const notYet = await call(`Bearer ${issued.key}`, { expiresAt: new Date(NOW.getTime() + 1000) });
    expect(notYet.next).toHaveBeenCalledOnce();
  });
});

describe("requireRole", () => {
  const run = (role: Principal["role"], needed: Principal["role"]) => {
    const res = fakeRes();
    res.locals.principal = { team: "t", role, keyId: "k", keyName: "k" } satisfies Principal;
    const next = vi.fn();
    requireRole(needed)({} as Request, res as unknown as Response, next);
    return { res, next };
  };
  it("orders viewer < member < admin < operator", () => {
    expect(run("viewer", "viewer").next).toHaveBeenCalled();
    expect(run("member", "viewer").next).toHaveBeenCalled();
    expect(run("admin", "member").next).toHaveBeenCalled();
    const denied = run("viewer", "member");
    expect(denied.next).not.toHaveBeenCalled();
    expect(denied.res.statusCode).toBe(403);
    expect(denied.res.body).toMatchObject({ error: { message: "this needs the 'member' role; the key's role is 'viewer'" } });
    expect(run("member", "admin").res.statusCode).toBe(403);
  });
  it("puts operator above admin: a team's admin is not a platform operator", () => {
    expect(run("operator", "admin").next).toHaveBeenCalled();
    const denied = run("admin", "operator");
    expect(denied.next).not.toHaveBeenCalled();
    expect(denied.res.statusCode).toBe(403);
    expect(denied.res.body).toMatchObject({
      error: { message: "this needs a platform operator key (role 'operator'); the key's role is 'admin'" },
    });
  });
});
