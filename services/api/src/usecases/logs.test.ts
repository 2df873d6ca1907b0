import { createLogger } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import type { ApiDeps } from "../context";
import { sseEvent } from "../routes/sse";
import { followJobLogs, type LogTarget, logsQuerySchema } from "./logs";

function fakeDeps(statuses: string[], reads: Array<Buffer | Error>) {
  const calls: Array<{ from: number; max: number }> = [];
  let s = 0;
  let r = 0;
  const deps = {
    logger: createLogger("api-test", "silent"),
    logPollMs: 1,
    streams: new Set(),
    repos: { jobs: { byId: async () => ({ status: statuses[Math.min(s++, statuses.length - 1)] }) } },
    gateway: {
      readLog: async (_c: unknown, _n: string, _d: string, from: number, max: number) => {
        calls.push({ from, max });
        const next = reads[r++] ?? Buffer.alloc(0);
        if (next instanceof Error) throw next;
        return next;
      },
    },
  } as unknown as ApiDeps;
  return { deps, calls };
}

const target: LogTarget = { jobId: "j", attemptId: "a1", node: "n1", cluster: {} as LogTarget["cluster"], dir: "/w/jobs/j/a1" };

function collect() {
  const events: Array<[string, string, number?]> = [];
  return {
    events,
    sink: {
      log: (d: Buffer, next: number) => events.push(["log", d.toString(), next]),
      error: (m: string) => events.push(["error", m]),
      end: (s: string) => events.push(["end", s]),
    },
  };
}

describe("followJobLogs", () => {
  it("sends chunks from the offset and ends when the job is terminal and nothing new came", async () => {
    const { deps, calls } = fakeDeps(
      ["RUNNING", "RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"],
      [Buffer.from("a\n"), Buffer.alloc(0), Buffer.from("bc"), Buffer.from("d")],
    );
    const { events, sink } = collect();
    await followJobLogs(deps, target, 10, 100, sink, new AbortController().signal);
    expect(events).toEqual([
      ["log", "a\n", 12],
      ["log", "bc", 14],
      // The job was already SUCCEEDED when "d" arrived: it is still delivered before the end.
      ["log", "d", 15],
      ["end", "SUCCEEDED"],
    ]);
    expect(calls.map((c) => c.from)).toEqual([10, 12, 12, 14, 15]);
  });

  it("reports a failing node once per reason and keeps polling", async () => {
    const { deps } = fakeDeps(
      ["RUNNING", "RUNNING", "RUNNING", "FAILED"],
      [new Error("unreachable"), new Error("unreachable"), Buffer.from("x")],
    );
    const { events, sink } = collect();
    await followJobLogs(deps, target, 0, 100, sink, new AbortController().signal);
    expect(events).toEqual([
      ["error", "could not read the log on node 'n1': unreachable"],
      ["log", "x", 1],
      ["end", "FAILED"],
    ]);
  });

  it("stops polling when aborted", async () => {
    const { deps, calls } = fakeDeps(["RUNNING"], []);
    const ctl = new AbortController();
    const { events, sink } = collect();
    setTimeout(() => ctl.abort(), 30);
    await followJobLogs(deps, target, 0, 100, sink, ctl.signal);
    const n = calls.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.length).toBe(n);
    expect(events).toEqual([]);
  });
});

describe("sseEvent", () => {
  it("puts every line in its own data field", () => {
    expect(sseEvent("log", "a\nb\n", "3")).toBe("id: 3\nevent: log\ndata: a\ndata: b\ndata: \n\n");
    expect(sseEvent("end", "SUCCEEDED")).toBe("event: end\ndata: SUCCEEDED\n\n");
    expect(sseEvent("log", "x\r\ny\rz")).toBe("event: log\ndata: x\ndata: y\ndata: z\n\n");
  });
});

describe("logsQuerySchema", () => {
  it("parses defaults and refuses bad values", () => {
    expect(logsQuerySchema.parse({})).toEqual({ follow: false, from: 0, maxBytes: 65536 });
    expect(logsQuerySchema.parse({ follow: "true", from: "5", node: "n2" })).toMatchObject({ follow: true, from: 5, node: "n2" });
    for (const q of [{ from: "-1" }, { maxBytes: "0" }, { follow: "yes" }, { node: "../x" }, { from: "abc" }]) {
      expect(logsQuerySchema.safeParse(q).success, JSON.stringify(q)).toBe(false);
    }
  });
});
