import type { Request, Response } from "express";
import { describe, expect, it, vi } from "vitest";
import { DEFAULT_TEAM } from "../context";
import { bearerToken, requireAdminToken, tokensEqual } from "./auth";

describe("tokensEqual", () => {
  it("is true only for the identical token", () => {
    expect(tokensEqual("s3cret-token-0123456789", "s3cret-token-0123456789")).toBe(true);
    expect(tokensEqual("s3cret-token-0123456788", "s3cret-token-0123456789")).toBe(false);
    expect(tokensEqual("", "s3cret-token-0123456789")).toBe(false);
    expect(tokensEqual("s3cret-token-0123456789-and-more", "s3cret-token-0123456789")).toBe(false);
    expect(tokensEqual("ünïcødé", "ünïcødé")).toBe(true);
  });
});

describe("bearerToken", () => {
  it("extracts the token of a Bearer header", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Bearer  abc ")).toBe("abc");
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
  });
});

function call(authorization?: string) {
  const req = { get: (h: string) => (h.toLowerCase() === "authorization" ? authorization : undefined) } as unknown as Request;
  const res = {
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
  const next = vi.fn();
  requireAdminToken("the-admin-token-1234")(req, res as unknown as Response, next);
  return { res, next };
}

describe("requireAdminToken", () => {
  it("lets the right token through and sets the team", () => {
    const { res, next } = call("Bearer the-admin-token-1234");
    expect(next).toHaveBeenCalledOnce();
    expect(res.locals.team).toBe(DEFAULT_TEAM);
  });

  it("401 JSON without a token or with a wrong one", () => {
    for (const h of [undefined, "Bearer wrong", "Basic dGhlLWFkbWluLXRva2VuLTEyMzQ=", "the-admin-token-1234"]) {
      const { res, next } = call(h);
      expect(next).not.toHaveBeenCalled();
      expect(res.statusCode).toBe(401);
      expect(res.body).toMatchObject({ error: { message: expect.any(String) } });
      expect(res.headers["WWW-Authenticate"]).toMatch(/^Bearer/);
      expect(res.locals.team).toBeUndefined();
    }
  });
});
