import { describe, expect, it } from "vitest";
import { LineSplitter, SseParser } from "./sse";

describe("SseParser", () => {
  it("parses events split across chunks, with several data lines, ids and comments", () => {
    const p = new SseParser();
    expect(p.push(": hello\n\nevent: log\nid: 12\ndata: step 1\ndata: st")).toEqual([]);
    expect(p.push("ep 2\n\nevent: end\r\ndata: SUCCEEDED\r\n\r\n")).toEqual([
      { event: "log", id: "12", data: "step 1\nstep 2" },
      { event: "end", data: "SUCCEEDED" },
    ]);
  });

  it("keeps data verbatim after the one optional space, and empty data lines", () => {
    const p = new SseParser();
    expect(p.push("event: log\ndata:  two spaces\ndata:\n\n")).toEqual([{ event: "log", data: " two spaces\n" }]);
  });
});

describe("LineSplitter", () => {
  it("joins a line cut between chunks and keeps empty lines", () => {
    const s = new LineSplitter();
    expect(s.push("rank 1 step 1\nrank 1 st")).toEqual(["rank 1 step 1"]);
    expect(s.push("ep 2\n\nlast")).toEqual(["rank 1 step 2", ""]);
    expect(s.flush()).toEqual(["last"]);
    expect(s.flush()).toEqual([]);
  });
});
