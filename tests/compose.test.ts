import { readFileSync } from "node:fs";
import { QUEUE_NAMES } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = new URL("..", import.meta.url);
const compose = parse(readFileSync(new URL("docker-compose.yml", root), "utf8"), { merge: true });

describe("docker-compose.yml", () => {
  it("runs redis with AOF and noeviction, real mongo, and the five services", () => {
    expect(compose.services.redis.command).toEqual(
      expect.arrayContaining(["--appendonly", "yes", "--maxmemory-policy", "noeviction"]),
    );
    expect(compose.services.mongo.image).toMatch(/^mongo:/);
    for (const svc of ["api", "launcher", "monitor", "cost", "alerting"]) {
      expect(compose.services[svc].command).toEqual([`services/${svc}/src/main.ts`]);
      expect(compose.services[svc].environment.REDIS_URL).toBe("redis://redis:6379");
      expect(compose.services[svc].environment.MONGO_URL).toBe("mongodb://mongo:27017/");
    }
  });

  it("publishes only the API port, so worker services can be scaled (--scale launcher=3)", () => {
    for (const svc of ["launcher", "monitor", "cost", "alerting"]) {
      expect(compose.services[svc].ports).toBeUndefined();
      expect(compose.services[svc].container_name).toBeUndefined();
    }
    expect(compose.services.api.ports).toEqual(["8080:8080"]);
  });

  it("points every service at a main.ts that exists", () => {
    for (const svc of ["api", "launcher", "monitor", "cost", "alerting"]) {
      expect(() => readFileSync(new URL(`services/${svc}/src/main.ts`, root))).not.toThrow();
    }
    expect(QUEUE_NAMES.length).toBeGreaterThan(0);
  });
});
