import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { DEFAULT_TEAM } from "../context";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Constant-time token comparison: both sides are hashed first, so neither the length nor the
 * position of the first differing character leaks through timing.
 */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** Requires the admin bearer token; sets res.locals.team for the handlers. 401 JSON otherwise. */
export function requireAdminToken(expected: string): RequestHandler {
  return (req, res, next) => {
    const token = bearerToken(req.get("authorization"));
    if (token === undefined || !tokensEqual(token, expected)) {
      res
        .status(401)
        .set("WWW-Authenticate", 'Bearer realm="trainyard"')
        .json({
          error: { message: token === undefined ? "missing bearer token (Authorization: Bearer <token>)" : "invalid token" },
        });
      return;
    }
    res.locals.team = DEFAULT_TEAM;
    next();
  };
}
