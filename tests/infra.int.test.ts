/**
 * The local infrastructure the other integration files rely on: on CI every node framework the
 * tests need must have installed (scripts/infra/up.sh fails there rather than record a failure),
 * so no framework test can pass by skipping.
 */
import { readdirSync } from "node:fs";
import { INFRA_DIR, loadInfra, missingFramework } from "@trainyard/testkit";
import { describe, expect, it } from "vitest";

describe("node frameworks installed by scripts/infra/up.sh", () => {
  it("infra.json reports what the node venv really imports", () => {
    const { frameworks } = loadInfra();
    expect(frameworks.pytorch).toBe(true);
    expect(frameworks.tensorflow).toBe(missingFramework("tensorflow") === undefined);
    expect(frameworks.horovod).toBe(missingFramework("horovod") === undefined);
  });

  it.runIf(process.env.CI === "true")("on CI: every framework installed, none recorded as failed", () => {
    const failed = readdirSync(INFRA_DIR).filter((f) => f.endsWith(".failed"));
    expect(failed, `frameworks recorded as failed in ${INFRA_DIR}`).toEqual([]);
    expect(missingFramework("tensorflow")).toBeUndefined();
    expect(missingFramework("horovod")).toBeUndefined();
    expect(loadInfra().frameworks).toMatchObject({ tensorflow: true, horovod: true, mpi: true });
  });
});
