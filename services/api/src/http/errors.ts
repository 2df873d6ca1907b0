import type { Logger } from "@trainyard/common";
import { UserError } from "@trainyard/common";
import { isDatabaseUnavailableError } from "@trainyard/db";
import { isRedisUnavailableError } from "@trainyard/runtime";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { ZodError, type z } from "zod";

/** Seconds a client is told to wait (Retry-After) when the database is momentarily unavailable. */
export const DB_RETRY_AFTER_SECONDS = 1;
/** Seconds a client is told to wait when Redis (queues, rate limits, write locks) is unavailable: a restart takes seconds. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/** A dependency outside the API (a node over SSH) failed; the caller gets a 502 with the reason. */
export class UpstreamError extends Error {
  readonly status = 502;
  constructor(message: string) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface ErrorBody {
  error: { message: string; details?: unknown };
}

type ZodIssue = z.core.$ZodIssue;

/** `resources.nodes`, `command[0]`, `files["../x"]`: a JS-like path that shows odd keys quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(typeof seg === "symbol" ? seg.toString() : seg)}]`;
  }
  return out;
}

/** "resources.nodes: Too small…; name: must be…" — one `path: message` per issue. */
export function formatIssues(issues: readonly ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = formatPath(i.path);
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join("; ");
}

function isZodError(err: unknown): err is ZodError {
  return err instanceof ZodError || (err instanceof Error && err.name === "ZodError" && Array.isArray((err as ZodError).issues));
}

/** Errors raised by express.json (body-parser): they carry `type` and a 4xx `status`. */
interface BodyParserError extends Error {
  type: string;
  status: number;
  expose?: boolean;
  limit?: number;
}
function isBodyParserError(err: unknown): err is BodyParserError {
  return (
    err instanceof Error &&
    typeof (err as BodyParserError).type === "string" &&
    typeof (err as BodyParserError).status === "number" &&
    (err as BodyParserError).status >= 400 &&
    (err as BodyParserError).status < 500
  );
}

/** Maps any error to a status and a body that is safe to show: never a stack, never internals. */
export function toHttpError(err: unknown): {
  status: number;
  body: ErrorBody;
  internal: boolean;
  headers?: Record<string, string>;
} {
  if (err instanceof UserError) {
    return {
      status: err.status,
      body: { error: { message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } },
      internal: false,
    };
  }
  if (isZodError(err)) {
    return { status: 400, body: { error: { message: formatIssues(err.issues), details: err.issues } }, internal: false };
  }
  if (err instanceof UpstreamError) return { status: 502, body: { error: { message: err.message } }, internal: false };
  if (isBodyParserError(err)) {
    switch (err.type) {
      case "entity.parse.failed":
        return { status: 400, body: { error: { message: `invalid JSON: ${err.message}` } }, internal: false };
      case "entity.too.large":
        return {
          status: 413,
          body: { error: { message: `request body is larger than the limit of ${err.limit ?? "?"} bytes` } },
          internal: false,
        };
      case "encoding.unsupported":
      case "charset.unsupported":
        return { status: 415, body: { error: { message: err.message } }, internal: false };
      default:
        return { status: err.status, body: { error: { message: err.expose ? err.message : "bad request" } }, internal: false };
    }
  }
  if (isDatabaseUnavailableError(err)) {
    // A write conflict that outlived the repository's retries, or no reachable database: transient.
    return {
      status: 503,
      body: { error: { message: "the database is busy or unavailable; retry the request" } },
      internal: false,
      headers: { "Retry-After": String(DB_RETRY_AFTER_SECONDS) },
    };
  }
  if (isRedisUnavailableError(err)) {
    // Nothing was queued: the request may be repeated once Redis answers again.
    return {
      status: 503,
      body: { error: { message: "the queue service (Redis) is unavailable; retry the request" } },
      internal: false,
      headers: { "Retry-After": String(REDIS_RETRY_AFTER_SECONDS) },
    };
  }
  return { status: 500, body: { error: { message: "internal error" } }, internal: true };
}

/** The one error middleware of the API. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body, internal, headers } = toHttpError(err);
    if (internal) logger.error({ err, method: req.method, path: req.path }, "request failed");
    else if (status === 503) logger.warn({ err: (err as Error).message, method: req.method, path: req.path }, body.error.message);
    else logger.debug({ status, method: req.method, path: req.path, message: body.error.message }, "request refused");
    if (res.headersSent) {
      // A streaming response already started: all that is left is to end it.
      res.end();
      return;
    }
    if (headers) res.set(headers);
    res.status(status).json(body);
  };
}

/** JSON 404 for anything no route matched. */
export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: { message: `no route for ${req.method} ${req.path}` } });
};

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** 415 for a POST/PUT/PATCH that carries a body which is not JSON. */
export const requireJsonBody: RequestHandler = (req, res, next) => {
  if (!BODY_METHODS.has(req.method)) return next();
  const length = req.get("content-length");
  const hasBody = req.get("transfer-encoding") !== undefined || (length !== undefined && length !== "0");
  if (hasBody && !req.is(["application/json", "application/*+json"])) {
    res.status(415).json({
      error: {
        message: `request body must be JSON (Content-Type: application/json), got ${req.get("content-type") ?? "no Content-Type"}`,
      },
    });
    return;
  }
  next();
};
