import { existsSync } from "node:fs";
import { join } from "node:path";
import { CONSOLE_DIST_DIR, CONSOLE_PATH } from "@trainyard/console";
import express, { type Response, Router } from "express";

export { CONSOLE_PATH };

/**
 * The console's own policy: only this origin's scripts, styles (uPlot sets inline styles), images
 * and API calls; no upgrade-insecure-requests, so it also works over plain http on a LAN.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The web console at /ui: the static build of @trainyard/console. Content-hashed assets are
 * cached for a year; every other GET answers index.html (the app routes in the browser), which is
 * revalidated each time so a new build is picked up. Public like /docs: all data comes from /v1 with
 * the user's key.
 */
export function consoleApp(dir: string = CONSOLE_DIST_DIR): Router {
  const r = Router();
  const index = join(dir, "index.html");
  r.use((_req, res, next) => {
    res.setHeader("Content-Security-Policy", CSP);
    next();
  });
  r.use("/assets", express.static(join(dir, "assets"), { index: false, immutable: true, maxAge: "365d", fallthrough: true }));
  r.use("/assets", (_req, res) => {
    res.status(404).json({ error: { message: "no such console asset" } });
  });
  r.use((req, res: Response, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    if (!existsSync(index)) {
      res.status(503).json({
        error: { message: "the console is not built: run `pnpm --filter @trainyard/console build` (scripts/bootstrap.sh does)" },
      });
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    res.sendFile(index);
  });
  return r;
}
