import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import type { Registry } from "prom-client";

export type ReadinessCheck = () => Promise<void>;

/** /healthz (process up), /readyz (dependencies answer) and /metrics (Prometheus) on one app. */
export function mountHealthRoutes(
  app: Express,
  checks: Record<string, ReadinessCheck>,
  registry: Registry,
  isShuttingDown: () => boolean,
): void {
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const results: Record<string, string> = {};
    let ok = !isShuttingDown();
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000);
          results[name] = "ok";
        } catch (err) {
          ok = false;
          results[name] = err instanceof Error ? err.message : "failed";
        }
      }),
    );
    if (isShuttingDown()) results.shutdown = "in progress";
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "not ready", checks: results });
  });
  app.get("/metrics", async (_req, res) => {
    res.set("Content-Type", registry.contentType);
    res.send(await registry.metrics());
  });
}

export async function listen(app: Express, port: number, host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
    server.once("error", reject);
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
