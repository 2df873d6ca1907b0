import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { QUEUE_NAMES, QUEUES, type QueueName, type ServiceName } from "@trainyard/common";
import { QueueBus } from "@trainyard/runtime";
import { REPO_ROOT } from "@trainyard/testkit";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";

const SERVICES: ServiceName[] = ["api", "launcher", "monitor", "cost", "alerting"];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Queues named in `.send("<queue>"` calls of the given files. */
function queuesSentIn(files: string[]): Set<QueueName> {
  const sent = new Set<QueueName>();
  for (const f of files) {
    for (const m of readFileSync(f, "utf8").matchAll(/\.send\(\s*"([a-z]+)"/g)) sent.add(m[1] as QueueName);
  }
  return sent;
}

describe("the queue catalog's producers", () => {
  const core = sources(join(REPO_ROOT, "packages/core/src"));
  const coreQueues = queuesSentIn(core);

  it("list every service that sends to a queue, directly or through the core use cases it calls", () => {
    for (const service of SERVICES) {
      const files = sources(join(REPO_ROOT, "services", service, "src"));
      const sent = queuesSentIn(files);
      // A service that calls into @trainyard/core's lifecycle or scheduling sends what they send.
      if (files.some((f) => /from "@trainyard\/core"/.test(readFileSync(f, "utf8")))) for (const q of coreQueues) sent.add(q);
      for (const q of sent) {
        expect(QUEUE_NAMES, `${service} sends to an unknown queue`).toContain(q);
        expect(QUEUES[q].producers as readonly string[], `${service} sends to '${q}'`).toContain(service);
      }
    }
  });

  it("are enforced: a service's bus refuses a queue it is not listed for, before anything reaches Redis", async () => {
    const bus = new QueueBus({} as Redis, "unused", "alerting");
    await expect(bus.send("launch", { jobId: "0".repeat(24) })).rejects.toThrow(
      /the alerting service is not a producer of queue 'launch'/,
    );
  });
});
