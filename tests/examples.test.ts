import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jobSpecSchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "examples");
const specs = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(join(root, d.name))
      .filter((f) => /^job.*\.json$/.test(f))
      .map((f) => join(d.name, f)),
  );

describe("examples", () => {
  it("has one per framework", () => {
    const frameworks = new Set(specs.map((s) => JSON.parse(readFileSync(join(root, s), "utf8")).framework));
    expect([...frameworks].sort()).toEqual(["command", "horovod", "pytorch", "tensorflow"]);
  });

  for (const spec of specs) {
    it(`${spec} is a valid job spec whose @files exist`, () => {
      const body = JSON.parse(readFileSync(join(root, spec), "utf8"));
      for (const [name, ref] of Object.entries(body.files as Record<string, string>)) {
        expect(ref.startsWith("@")).toBe(true);
        const file = join(root, spec, "..", ref.slice(1));
        expect(existsSync(file), file).toBe(true);
        body.files[name] = readFileSync(file, "utf8");
      }
      const r = jobSpecSchema.safeParse(body);
      expect(r.success, JSON.stringify(r.error?.issues)).toBe(true);
    });
  }
});
