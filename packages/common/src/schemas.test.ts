import { describe, expect, it } from "vitest";
import { canTransition, clusterSpecSchema, jobSpecSchema, TERMINAL_STATUSES, TRANSITIONS } from "./index";

const FP = `SHA256:${"A".repeat(43)}`;
const cluster = {
  name: "local",
  nodes: [
    { name: "n1", host: "127.0.0.2", port: 2222, user: "ty1", gpus: 2, workRoot: "/srv/ty1" },
    { name: "n2", host: "127.0.0.3", port: 2222, user: "ty2", gpus: 2, workRoot: "/srv/ty2" },
  ],
  ssh: { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----", hostKeys: { n1: FP, n2: FP } },
};
const job = {
  name: "mlp-ddp",
  framework: "pytorch",
  cluster: "local",
  resources: { nodes: 2, gpusPerNode: 2 },
  command: ["python3", "train.py"],
};

const messages = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  r.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n") ?? "";

describe("cluster spec", () => {
  it("accepts the documented example and fills defaults", () => {
    const c = clusterSpecSchema.parse(cluster);
    expect(c.nodes[0]?.gpuType).toBe("cpu");
    expect(c.ports).toEqual({ min: 29500, max: 29999 });
    expect(c.ssh.trustOnFirstUse).toBe(false);
  });

  it("requires a pinned host key for every node unless trust-on-first-use is asked for", () => {
    const r = clusterSpecSchema.safeParse({ ...cluster, ssh: { ...cluster.ssh, hostKeys: { n1: FP } } });
    expect(messages(r)).toContain("node 'n2' has no pinned host key");
    expect(
      clusterSpecSchema.safeParse({ ...cluster, ssh: { ...cluster.ssh, hostKeys: {}, trustOnFirstUse: true } }).success,
    ).toBe(true);
  });

  it("refuses duplicate nodes, unknown pinned nodes, bad fingerprints and unsafe fields", () => {
    const dup = { ...cluster, nodes: [cluster.nodes[0], { ...cluster.nodes[0] }] };
    expect(messages(clusterSpecSchema.safeParse(dup))).toContain("duplicate node name 'n1'");
    expect(
      messages(
        clusterSpecSchema.safeParse({ ...cluster, ssh: { ...cluster.ssh, hostKeys: { ...cluster.ssh.hostKeys, n9: FP } } }),
      ),
    ).toContain("no node named 'n9'");
    expect(
      messages(clusterSpecSchema.safeParse({ ...cluster, ssh: { ...cluster.ssh, hostKeys: { n1: "md5:aa", n2: FP } } })),
    ).toContain("SHA256");
    const badRoot = { ...cluster, nodes: [{ ...cluster.nodes[0], workRoot: "/srv/$(id)" }, cluster.nodes[1]] };
    expect(messages(clusterSpecSchema.safeParse(badRoot))).toContain("nodes.0.workRoot");
    const badUser = { ...cluster, nodes: [{ ...cluster.nodes[0], user: "root;rm" }, cluster.nodes[1]] };
    expect(messages(clusterSpecSchema.safeParse(badUser))).toContain("nodes.0.user");
  });
});

describe("job spec", () => {
  it("accepts the documented example and fills defaults", () => {
    const j = jobSpecSchema.parse({ ...job, files: { "train.py": "print(1)" }, env: { SEED: "1" } });
    expect(j.project).toBe("default");
    expect(j.workdir).toBeNull();
    expect(j.pytorch.rendezvous).toBe("static");
  });

  it.each([
    [{ framework: "jax" }, 'unknown framework "jax"'],
    [{ name: "a b" }, "name:"],
    [{ name: "../x" }, "name:"],
    [{ env: { "A-B": "1" } }, "env"],
    [{ env: { TRAINYARD_JOB_ID: "x" } }, "reserved"],
    [{ resources: { nodes: "2", gpusPerNode: 1 } }, "resources.nodes"],
    [{ resources: { nodes: -1, gpusPerNode: 1 } }, "resources.nodes"],
    [{ resources: { nodes: 1e9, gpusPerNode: 1 } }, "resources.nodes"],
    [{ command: "python" }, "command"],
    [{ command: [] }, "command"],
    [{ files: { "../etc/passwd": "x" } }, "files"],
    [{ files: { "launch.sh": "x" } }, "reserved file name"],
    [{ extra: true }, "extra"],
    [{ workdir: "relative/path" }, "workdir"],
  ])("refuses %j with a message naming the problem", (patch, expected) => {
    const r = jobSpecSchema.safeParse({ ...job, ...patch });
    expect(r.success).toBe(false);
    expect(messages(r)).toContain(expected);
  });

  it("limits inline files to 1 MiB in total", () => {
    const r = jobSpecSchema.safeParse({ ...job, files: { "a.bin": "x".repeat(700_000), "b.bin": "y".repeat(400_000) } });
    expect(messages(r)).toContain("limited to 1048576 bytes");
  });

  it("keeps hostile values as plain strings (quoting happens at the shell boundary)", () => {
    const hostile = "$(touch /tmp/canary); `id`; 'q' \"d\"\nnext";
    const j = jobSpecSchema.parse({ ...job, command: ["python3", "-c", hostile], env: { X: hostile } });
    expect(j.command[2]).toBe(hostile);
    expect(j.env.X).toBe(hostile);
  });
});

describe("status transitions", () => {
  it("never leaves a terminal status", () => {
    for (const s of TERMINAL_STATUSES) expect(TRANSITIONS[s]).toEqual([]);
  });

  it("follows the documented lifecycle", () => {
    expect(canTransition("QUEUED", "LAUNCHING")).toBe(true);
    expect(canTransition("RUNNING", "RETRYING")).toBe(true);
    expect(canTransition("RETRYING", "LAUNCHING")).toBe(true);
    expect(canTransition("QUEUED", "SUCCEEDED")).toBe(false);
    expect(canTransition("SUCCEEDED", "RUNNING")).toBe(false);
  });
});
