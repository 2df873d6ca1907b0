import { apiKeyId, hashApiKey, OPERATOR_ROLE, type Role, roleAllows, secretsEqual } from "@trainyard/common";
import type { Repos } from "@trainyard/db";
import type { RequestHandler, Response } from "express";

/** Who is calling: the key's team and role. Set by `authenticate`, read by everything after it. */
export interface Principal {
  team: string;
  role: Role;
  keyId: string;
  keyName: string;
}

/** The key id the bootstrap admin token acts under (in the audit log and rate limits). */
export const BOOTSTRAP_KEY_ID = "bootstrap";

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export interface AuthOptions {
  /** API_ADMIN_TOKEN: the bootstrap operator key, acting for `bootstrapTeam` (the platform team). */
  bootstrapToken: string;
  bootstrapTeam: string;
  now?: () => Date;
}

function unauthorized(res: Response, message: string): void {
  res.status(401).set("WWW-Authenticate", 'Bearer realm="trainyard"').json({ error: { message } });
}

/**
 * Resolve the bearer key to a principal, or answer 401. The bootstrap token and stored key
 * hashes are compared in constant time; a revoked or expired key is named as such only to a
 * caller that holds the real key.
 */
export function authenticate(repos: Pick<Repos, "apiKeys">, opts: AuthOptions): RequestHandler {
  const now = opts.now ?? (() => new Date());
  return async (req, res, next) => {
    const token = bearerToken(req.get("authorization"));
    if (token === undefined) return unauthorized(res, "missing bearer token (Authorization: Bearer <API key>)");
    if (secretsEqual(token, opts.bootstrapToken)) {
      res.locals.principal = {
        team: opts.bootstrapTeam,
        role: OPERATOR_ROLE,
        keyId: BOOTSTRAP_KEY_ID,
        keyName: "bootstrap",
      } satisfies Principal;
      return next();
    }
    const keyId = apiKeyId(token);
    if (keyId === undefined) return unauthorized(res, "malformed API key (expected tyk_<id>_<secret>)");
    const key = await repos.apiKeys.byKeyId(keyId);
    // Hash compared even for an unknown id, so timing does not tell which ids exist.
    const matches = secretsEqual(hashApiKey(token), key?.hash ?? "0".repeat(64));
    if (!key || !matches) return unauthorized(res, "invalid API key");
    if (key.revokedAt) return unauthorized(res, "API key revoked");
    if (key.expiresAt && new Date(key.expiresAt).getTime() <= now().getTime()) return unauthorized(res, "API key expired");
    res.locals.principal = { team: key.team, role: key.role, keyId: key.keyId, keyName: key.name } satisfies Principal;
    repos.apiKeys.touch(key, now()).catch(() => undefined);
    next();
  };
}

/** The caller, as `authenticate` established it. */
export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  // Routes are mounted behind `authenticate`; reaching here without a principal is a wiring bug.
  if (!p) throw new Error("no authenticated principal on this request");
  return p;
}

/** 403 unless the caller's role is at least `needed`. */
export function requireRole(needed: Role): RequestHandler {
  const what = needed === OPERATOR_ROLE ? `a platform operator key (role '${needed}')` : `the '${needed}' role`;
  return (_req, res, next) => {
    const { role } = principalOf(res);
    if (roleAllows(role, needed)) return next();
    res.status(403).json({ error: { message: `this needs ${what}; the key's role is '${role}'` } });
  };
}
