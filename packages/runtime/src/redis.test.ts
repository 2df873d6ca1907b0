import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis, isRedisUnavailableError } from "./redis";

describe("createRedis fail-fast (the API's connection)", () => {
  // A TCP server that accepts and never answers: a Redis that is stopped (SIGSTOP) or overloaded.
  let silent: Server;
  let silentPort = 0;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it("refuses a command at once when Redis is not reachable, with an error read as 'unavailable'", async () => {
    // Port 1 on loopback: nothing listens there.
    const redis = createRedis("redis://127.0.0.1:1", { failFastTimeoutMs: 300 });
    redis.on("error", () => undefined);
    const err = await redis.set("k", "v").catch((e: Error) => e);
    redis.disconnect();
    expect(err).toBeInstanceOf(Error);
    expect(isRedisUnavailableError(err), (err as Error).message).toBe(true);
  });

  it("gives up on a command that gets no answer after the timeout", async () => {
    const redis = createRedis(`redis://127.0.0.1:${silentPort}`, { failFastTimeoutMs: 300 });
    redis.on("error", () => undefined);
    // No ready check answer either: wait until the socket is connected, then send.
    await new Promise<void>((r) => redis.once("connect", () => r()));
    const err = await redis.get("k").catch((e: Error) => e);
    redis.disconnect();
    expect(isRedisUnavailableError(err), String(err)).toBe(true);
  });

  it("does not read ordinary failures as Redis being down", () => {
    expect(isRedisUnavailableError(new Error("WRONGTYPE Operation against a key holding the wrong kind of value"))).toBe(false);
    expect(isRedisUnavailableError(null)).toBe(false);
    expect(isRedisUnavailableError("x")).toBe(false);
  });
});
