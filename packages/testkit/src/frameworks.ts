import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "vitest";
import { INFRA_DIR } from "./infra";

/**
 * Frameworks scripts/infra/up.sh installs into the node venv beyond PyTorch (always there),
 * including the launchers of the `command` examples (scripts/infra/node-launchers.sh).
 */
export type NodeFramework = "tensorflow" | "horovod" | "jax" | "deepspeed" | "accelerate";

const MODULE: Record<NodeFramework, string> = {
  tensorflow: "tensorflow",
  horovod: "horovod.torch",
  jax: "jax",
  deepspeed: "deepspeed",
  accelerate: "accelerate",
};
export const NODE_PYTHON = "/opt/trainyard-node/venv/bin/python3";

const checked = new Map<NodeFramework, string | undefined>();

/** Undefined when the framework imports in the node venv, else why not (up.sh's record if any). */
export function missingFramework(name: NodeFramework): string | undefined {
  if (!checked.has(name)) checked.set(name, probe(name));
  return checked.get(name);
}

/** Imports it for real (TensorFlow takes seconds), so callers go through the cache above. */
function probe(name: NodeFramework): string | undefined {
  try {
    execFileSync(NODE_PYTHON, ["-c", `import ${MODULE[name]}`], { stdio: "ignore" });
    return undefined;
  } catch {
    const failed = join(INFRA_DIR, `${name}.failed`);
    if (existsSync(failed)) return readFileSync(failed, "utf8").split("\n")[0];
    return `not installed in the node venv (scripts/infra/up.sh installs it unless TRAINYARD_FRAMEWORKS leaves it out)`;
  }
}

type TestFn = (title: string, fn: () => Promise<void> | void, timeout?: number) => void;

/**
 * `it` for a test that needs a framework on the nodes. Installed: the test runs. Missing on CI
 * (CI=true): the test fails with the reason, so a green CI never hides a framework that did not
 * install. Missing elsewhere: the test skips and the reason is printed.
 */
export function itWithFramework(name: NodeFramework): TestFn {
  const missing = missingFramework(name);
  if (!missing) return it;
  if (process.env.CI === "true") {
    return (title, _fn, timeout) =>
      it(
        title,
        () => {
          throw new Error(`${name} is missing on the test nodes and CI=true, so this fails instead of skipping: ${missing}`);
        },
        timeout,
      );
  }
  console.warn(`[testkit] skipping ${name} tests: ${missing}`);
  return it.skip;
}
