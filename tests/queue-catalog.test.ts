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

const SEND = /\.send\(\s*"([a-z]+)"/g;

/** Queues named in `.send("<queue>"` calls of a text. */
const queuesIn = (text: string) => new Set([...text.matchAll(SEND)].map((m) => m[1] as QueueName));

/**
 * What each exported function of @trainyard/core sends, directly or through the core functions it
 * calls (a function's text runs to the next top-level declaration).
 */
function coreSends(): Map<string, Set<QueueName>> {
  const bodies = new Map<string, string>();
  for (const f of sources(join(REPO_ROOT, "packages/core/src"))) {
    const text = readFileSync(f, "utf8");
    const decls = [...text.matchAll(/^(?:export )?(?:async )?function (\w+)/gm)];
    for (const [i, m] of decls.entries()) bodies.set(m[1]!, text.slice(m.index, decls[i + 1]?.index ?? text.length));
  }
  const sends = new Map<string, Set<QueueName>>();
  const resolve = (name: string, seen: Set<string>): Set<QueueName> => {
    const known = sends.get(name);
    if (known) return known;
    const body = bodies.get(name) ?? "";
    const out = queuesIn(body);
    for (const callee of bodies.keys()) {
      if (callee !== name && !seen.has(callee) && new RegExp(`\\b${callee}\\(`).test(body)) {
        for (const q of resolve(callee, new Set([...seen, name]))) out.add(q);
      }
    }
    if (seen.size === 0) sends.set(name, out);
    return out;
  };
  for (const name of bodies.keys()) resolve(name, new Set());
  return sends;
}

describe("the queue catalog's producers", () => {
  const core = coreSends();

  it("list every service that sends to a queue, directly or through the core use cases it calls", () => {
    for (const service of SERVICES) {
      const texts = sources(join(REPO_ROOT, "services", service, "src")).map((f) => readFileSync(f, "utf8"));
      const sent = new Set(texts.flatMap((t) => [...queuesIn(t)]));
      // A core function the service imports sends on its behalf.
      for (const t of texts) {
        for (const m of t.matchAll(/import \{([^}]*)\} from "@trainyard\/core"/g)) {
          for (const name of m[1]!.split(",").map((n) => n.trim().replace(/^type /, ""))) {
            for (const q of core.get(name) ?? []) sent.add(q);
          }
        }
      }
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
