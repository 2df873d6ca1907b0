import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { addressAllowed, BlockedAddressError, type HostAllowlist, urlHostname } from "@trainyard/common";
import { classifyHttp, type SendResult } from "../retry";

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A DNS lookup that refuses private, loopback and link-local answers (unless allowlisted), used
 * for the connection itself: what is checked is what is connected to (no DNS rebinding).
 */
export function guardedLookup(allow: HostAllowlist) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(
      hostname,
      options as never,
      ((err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
        if (err) return callback(err, address, family);
        const list: LookupAddress[] = Array.isArray(address) ? address : [{ address, family: family ?? 4 }];
        const bad = list.find((a) => !addressAllowed(a.address, hostname, allow));
        if (bad)
          return callback(Object.assign(new BlockedAddressError(hostname, bad.address), { code: "EBLOCKED" }), address, family);
        callback(null, address, family);
      }) as never,
    );
  };
}

/**
 * POST a body to a URL through the SSRF guard, without following redirects, and classify the
 * answer. Never throws: network errors and timeouts come back as retryable results, a blocked
 * address as a permanent one.
 */
export function postGuarded(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { allow: HostAllowlist; timeoutMs: number },
): Promise<SendResult> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ ok: false, retry: false, error: "invalid URL" });
      return;
    }
    const host = urlHostname(target);
    if (isIP(host) && !addressAllowed(host, host, opts.allow)) {
      resolve({ ok: false, retry: false, error: new BlockedAddressError(host, host).message });
      return;
    }
    const mod = target.protocol === "https:" ? https : target.protocol === "http:" ? http : undefined;
    if (!mod) {
      resolve({ ok: false, retry: false, error: `unsupported scheme ${target.protocol}` });
      return;
    }
    let settled = false;
    const done = (r: SendResult) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const req = mod.request(
      target,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "Trainyard-Alerts/1",
          ...headers,
          "content-length": String(Buffer.byteLength(body)),
        },
        lookup: guardedLookup(opts.allow) as never,
        timeout: opts.timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          done(
            classifyHttp(
              res.statusCode ?? 0,
              Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
              Buffer.concat(chunks).toString("utf8"),
            ),
          );
        });
        res.on("error", (err) => done({ ok: false, retry: true, error: `reading the response failed: ${err.message}` }));
      },
    );
    req.on("timeout", () => {
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err instanceof BlockedAddressError || err.code === "EBLOCKED") done({ ok: false, retry: false, error: err.message });
      else done({ ok: false, retry: true, error: `network error: ${err.code ? `${err.code} ` : ""}${err.message}` });
    });
    req.end(body);
  });
}
