/**
 * Any launcher on the `command` framework: each example of examples/{jax,accelerate,deepspeed}
 * runs for real, as its job.json says, on 2 local SSH nodes (n1 = ty1@127.0.0.2, n2 =
 * ty2@127.0.0.3) with 2 rank slots each, and must SUCCEED with every process of every node in
 * one group (the all-reduced sum of all ranks, seen on each node) and the weights in sync.
 *
 * The launchers are installed into the node venv by scripts/infra/node-launchers.sh (through
 * up.sh); where one is missing the test skips with the recorded reason, and on CI it fails.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { JobView } from "@trainyard/common";
import { itWithFramework, processesOfAttempt, REPO_ROOT } from "@trainyard/testkit";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { type Platform, registerCluster, startPlatform, submitJob, waitForJob } from "./harness";

/** An example's job.json with its "@file" references read in, on the given cluster. */
function exampleJob(path: string, cluster: string): Record<string, unknown> {
  const file = join(REPO_ROOT, "examples", path);
  const spec = JSON.parse(readFileSync(file, "utf8")) as { files: Record<string, string> } & Record<string, unknown>;
  const files = Object.fromEntries(
    Object.entries(spec.files).map(([name, ref]) => [name, readFileSync(join(dirname(file), ref.slice(1)), "utf8")]),
  );
  return { ...spec, cluster, files };
}

const succeeded = (job: JobView) =>
  expect(job.status, `${job.failure?.reason ?? ""}\n${job.attempts[0]?.nodes.map((n) => n.logTail).join("\n")}`).toBe(
    "SUCCEEDED",
  );

// Launchers import slowly on a shared 2-core machine (DeepSpeed: ~30 s per process).
const RUN_MS = 360_000;

describe("launchers on the command framework: 2-node runs of the examples", () => {
  let p: Platform;
  let cluster: { id: string; name: string };

  beforeAll(async () => {
    p = await startPlatform();
    cluster = await registerCluster(p);
  });
  afterAll(async () => {
    await p?.close();
  });

  async function run(example: string): Promise<{ job: JobView; n1: string; n2: string }> {
    const id = await submitJob(p, exampleJob(example, cluster.name));
    const job = await waitForJob(p, id, undefined, RUN_MS);
    succeeded(job);
    const log = async (node: string) => {
      const res = await p.api("GET", `/v1/jobs/${id}/logs?node=${node}&maxBytes=1048576`);
      expect(res.status).toBe(200);
      return res.text;
    };
    expect(processesOfAttempt(job.attempts[0]!.id)).toEqual([]);
    return { job, n1: await log("n1"), n2: await log("n2") };
  }

  itWithFramework("jax")(
    "JAX: jax.distributed.initialize from MASTER_ENDPOINT/NNODES/NODE_RANK joins both nodes' 4 devices",
    async () => {
      const { job, n1, n2 } = await run("jax/job.json");
      // Process ids 0 and 1 summed over every device of both processes, seen by each node.
      expect(n1).toContain("process 0/2 devices=4 allreduce=1");
      expect(n2).toContain("process 1/2 devices=4 allreduce=1");
      // Gradients averaged over all devices: both processes learned y = 3x + 1.
      expect(n1).toContain("process 0 w=[3.0, 1.0]");
      expect(n2).toContain("process 1 w=[3.0, 1.0]");
      expect(job.progress).toMatchObject({ step: 10, totalSteps: 10 });
    },
    RUN_MS + 10_000,
  );

  itWithFramework("accelerate")(
    "Accelerate: accelerate launch --num_machines/--machine_rank starts 2 processes per node, MULTI_CPU over gloo",
    async () => {
      const { job, n1, n2 } = await run("accelerate/job.json");
      for (const r of [0, 1]) {
        expect(n1).toContain(`process ${r}/4 type=MULTI_CPU allreduce=6`);
        expect(n1).toMatch(new RegExp(`process ${r} steps=10 loss=[0-9.]+ in_sync=True`));
      }
      for (const r of [2, 3]) {
        expect(n2).toContain(`process ${r}/4 type=MULTI_CPU allreduce=6`);
        expect(n2).toMatch(new RegExp(`process ${r} steps=10 loss=[0-9.]+ in_sync=True`));
      }
      expect(job.progress).toMatchObject({ step: 10, totalSteps: 10 });
    },
    RUN_MS + 10_000,
  );

  itWithFramework("deepspeed")(
    "DeepSpeed: the deepspeed launcher with --no_ssh --node_rank reads Trainyard's hostfile; 4 ranks, one group",
    async () => {
      const { job, n1, n2 } = await run("deepspeed/job.json");
      // DeepSpeed's launcher placed ranks by the hostfile: 0-1 on the first host, 2-3 on the second.
      const [h1, h2] = p.infra.nodes;
      expect(n1).toContain(`'${h1!.host}': [0, 1], '${h2!.host}': [2, 3]`);
      for (const r of [0, 1]) {
        expect(n1).toContain(`rank ${r}/4 allreduce=6`);
        expect(n1).toMatch(new RegExp(`rank ${r} steps=10 loss=[0-9.]+ in_sync=True`));
      }
      for (const r of [2, 3]) {
        expect(n2).toContain(`rank ${r}/4 allreduce=6`);
        expect(n2).toMatch(new RegExp(`rank ${r} steps=10 loss=[0-9.]+ in_sync=True`));
      }
      // The shared-memory collective was built at install time, not JIT-compiled by each rank.
      expect(n1 + n2).not.toContain("Emitting ninja build file");
      expect(job.progress).toMatchObject({ step: 10, totalSteps: 10 });
    },
    RUN_MS + 10_000,
  );
});
