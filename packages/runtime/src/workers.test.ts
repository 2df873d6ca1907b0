import { describe, expect, it } from "vitest";
import { assertHandlersMatchCatalog } from "./workers";

const noop = async () => {};

describe("the queue catalog startup check", () => {
  it("accepts a service handling exactly its queues", () => {
    expect(() => assertHandlersMatchCatalog("launcher", { launch: noop, control: noop, schedule: noop })).not.toThrow();
    expect(() =>
      assertHandlersMatchCatalog("monitor", { monitor: noop, "cluster-checks": noop, checkpoints: noop }),
    ).not.toThrow();
  });

  it("refuses a missing handler, naming the queue", () => {
    expect(() => assertHandlersMatchCatalog("launcher", { launch: noop })).toThrow(/missing: control/);
  });

  it("refuses a handler for a queue another service consumes", () => {
    expect(() =>
      assertHandlersMatchCatalog("monitor", { monitor: noop, "cluster-checks": noop, checkpoints: noop, launch: noop }),
    ).toThrow(/not assigned to monitor: launch/);
  });
});
