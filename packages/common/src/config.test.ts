import { describe, expect, it } from "vitest";
import { apiConfigShape, ConfigError, loadConfig } from "./config";

describe("loadConfig", () => {
  it("lists every bad variable in one message", () => {
    expect(() => loadConfig(apiConfigShape, { TRAINYARD_SECRET_KEY: "short", API_ADMIN_TOKEN: "x", PORT: "abc" })).toThrow(
      ConfigError,
    );
    try {
      loadConfig(apiConfigShape, { TRAINYARD_SECRET_KEY: "short", API_ADMIN_TOKEN: "x", PORT: "abc" });
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toContain("TRAINYARD_SECRET_KEY");
      expect(msg).toContain("API_ADMIN_TOKEN");
      expect(msg).toContain("PORT");
    }
  });

  it("applies defaults and coerces numbers", () => {
    const c = loadConfig(apiConfigShape, {
      TRAINYARD_SECRET_KEY: Buffer.alloc(32, 1).toString("base64"),
      API_ADMIN_TOKEN: "a-long-enough-admin-token",
      PORT: "9000",
    });
    expect(c.PORT).toBe(9000);
    expect(c.TRAINYARD_QUEUE_PREFIX).toBe("trainyard");
    expect(c.STOP_GRACE_MS).toBe(10_000);
  });
});
