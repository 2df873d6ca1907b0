import type { NodeSpec } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { validateTopology } from "./topology";

function node(name: string, gpus: number, over: Partial<NodeSpec> = {}): NodeSpec {
  return {
    name,
    host: `10.0.0.${name.replace(/\D/g, "") || 1}`,
    port: 22,
    user: "train",
    gpus,
    gpuType: "a100",
    workRoot: "/srv/ty",
    ...over,
  };
}
const ports = { min: 29500, max: 29999 };
const job = (nodes: number, gpusPerNode: number) => ({ framework: "pytorch" as const, resources: { nodes, gpusPerNode } });

describe("validateTopology", () => {
  it("accepts a job that fits", () => {
    expect(validateTopology(job(2, 2), { nodes: [node("n1", 2), node("n2", 4)], ports })).toEqual([]);
  });

  it("gpu.type: a job asking for a type no node has is refused; otherwise only that type's nodes count", () => {
    const cluster = { nodes: [node("n1", 8), node("n2", 8, { gpuType: "h100" }), node("n3", 8, { gpuType: "H100" })], ports };
    const typed = (nodes: number, gpuType: string) => ({
      framework: "pytorch" as const,
      resources: { nodes, gpusPerNode: 8, gpuType },
    });
    expect(validateTopology(typed(1, "l4"), cluster)).toEqual([
      { rule: "gpu.type", message: "job needs gpuType 'l4' but the cluster's nodes are a100, h100, H100" },
    ]);
    expect(validateTopology(typed(2, "h100"), cluster)).toEqual([]);
    expect(validateTopology(typed(3, "h100"), cluster).map((i) => i.rule)).toEqual(["nodes.count"]);
  });

  it("nodes.count: more nodes than the cluster has", () => {
    const issues = validateTopology(job(3, 1), { nodes: [node("n1", 2), node("n2", 2)], ports });
    expect(issues).toEqual([{ rule: "nodes.count", message: "job needs 3 nodes but the cluster has 2 nodes (n1, n2)" }]);
  });

  it("gpus.per_node: no node is big enough, names the largest", () => {
    const issues = validateTopology(job(1, 8), { nodes: [node("n1", 2), node("n2", 4)], ports });
    expect(issues).toEqual([
      {
        rule: "gpus.per_node",
        node: "n2",
        message: "job needs 1 node with 8 GPUs each; no node has that many; the largest node is n2 with 4 GPUs",
      },
    ]);
  });

  it("gpus.per_node: not enough big nodes", () => {
    const issues = validateTopology(job(2, 4), { nodes: [node("n1", 8), node("n2", 2), node("n3", 1)], ports });
    expect(issues).toEqual([
      {
        rule: "gpus.per_node",
        node: "n1",
        message: "job needs 2 nodes with 4 GPUs each; only n1 (8) has enough; the largest node is n1 with 8 GPUs",
      },
    ]);
  });

  it("reports nodes.count and gpus.per_node together when both block", () => {
    const issues = validateTopology(job(3, 2), { nodes: [node("n1", 2), node("n2", 1)], ports });
    expect(issues.map((i) => i.rule)).toEqual(["nodes.count", "gpus.per_node"]);
  });

  it("hosts.unique: two nodes on the same user@host:port", () => {
    const issues = validateTopology(job(1, 1), {
      nodes: [
        node("n1", 2, { host: "127.0.0.2" }),
        node("n2", 2, { host: "127.0.0.2" }),
        node("n3", 2, { host: "127.0.0.2", port: 2222 }),
      ],
      ports,
    });
    expect(issues).toEqual([
      {
        rule: "hosts.unique",
        node: "n2",
        message: "nodes n1 and n2 are the same machine account train@127.0.0.2:22; each node needs its own user@host:port",
      },
    ]);
  });

  it("ports.range: range smaller than one job's port block", () => {
    const issues = validateTopology(job(1, 1), { nodes: [node("n1", 1)], ports: { min: 29500, max: 29502 } });
    expect(issues).toEqual([
      { rule: "ports.range", message: "port range 29500-29502 holds 3 ports; a pytorch job needs a block of 4" },
    ]);
    expect(validateTopology(job(1, 1), { nodes: [node("n1", 1)], ports: { min: 29500, max: 29503 } })).toEqual([]);
  });

  it("gpu.homogeneous is not required for pytorch", () => {
    const nodes = [node("n1", 2, { gpuType: "a100" }), node("n2", 2, { gpuType: "h100" })];
    expect(validateTopology(job(2, 2), { nodes, ports })).toEqual([]);
  });

  it("gpu.homogeneous: applies to frameworks that require it", () => {
    const nodes = [node("n1", 2, { gpuType: "a100" }), node("n2", 2, { gpuType: "h100" }), node("n3", 2, { gpuType: "a100" })];
    const req = { portsPerNode: 4, homogeneousGpus: true };
    expect(validateTopology(job(2, 2), { nodes, ports }, req)).toEqual([]);
    expect(validateTopology(job(3, 2), { nodes, ports }, req)).toEqual([
      {
        rule: "gpu.homogeneous",
        message: "pytorch needs the same GPU type on all 3 nodes; the eligible nodes mix a100 (n1, n3), h100 (n2)",
      },
    ]);
  });
});

describe("validateTopology: per-framework rules", () => {
  const two = [node("n1", 2), node("n2", 2)];
  const spec = (over: Record<string, unknown>) => ({
    framework: "pytorch" as const,
    resources: { nodes: 2, gpusPerNode: 2 },
    ...over,
  });

  it("ports.range: the port block is the framework's (TensorFlow: one port per task)", () => {
    const tf = { framework: "tensorflow" as const, resources: { nodes: 2, gpusPerNode: 1 } };
    expect(validateTopology(tf, { nodes: two, ports: { min: 29500, max: 29501 } })).toEqual([]);
    const three = [...two, node("n3", 2)];
    expect(
      validateTopology({ ...tf, resources: { nodes: 3, gpusPerNode: 1 } }, { nodes: three, ports: { min: 29500, max: 29501 } }),
    ).toEqual([{ rule: "ports.range", message: "port range 29500-29501 holds 2 ports; a tensorflow job needs a block of 3" }]);
  });

  it("gpu.homogeneous: required for Horovod and TensorFlow", () => {
    const mixed = [node("n1", 2, { gpuType: "a100" }), node("n2", 2, { gpuType: "h100" })];
    for (const framework of ["horovod", "tensorflow"] as const) {
      expect(validateTopology({ framework, resources: { nodes: 2, gpusPerNode: 1 } }, { nodes: mixed, ports })).toEqual([
        {
          rule: "gpu.homogeneous",
          message: `${framework} needs the same GPU type on all 2 nodes; the eligible nodes mix a100 (n1), h100 (n2)`,
        },
      ]);
    }
  });

  it("elastic.bounds: min <= nodes <= max, and a max the cluster can reach", () => {
    expect(validateTopology(spec({ resources: { nodes: 2, gpusPerNode: 1, minNodes: 3 } }), { nodes: two, ports })).toEqual([
      { rule: "elastic.bounds", message: "elastic bounds must satisfy minNodes <= nodes <= maxNodes; got 3 <= 2 <= 2" },
    ]);
    expect(
      validateTopology(spec({ resources: { nodes: 2, gpusPerNode: 1, minNodes: 1, maxNodes: 4 } }), { nodes: two, ports }),
    ).toEqual([{ rule: "elastic.bounds", message: "maxNodes is 4 but the cluster has 2 nodes; at most 2 can ever join" }]);
    expect(
      validateTopology(spec({ resources: { nodes: 2, gpusPerNode: 1, minNodes: 1, maxNodes: 2 } }), { nodes: two, ports }),
    ).toEqual([]);
  });

  it("elastic.bounds and world.size: Horovod Elastic counts processes", () => {
    const h = (minNp: number, maxNp: number) => ({
      framework: "horovod" as const,
      resources: { nodes: 2, gpusPerNode: 2 },
      horovod: { launcher: "horovodrun" as const, elastic: { minNp, maxNp } },
    });
    expect(validateTopology(h(2, 4), { nodes: two, ports })).toEqual([]);
    expect(validateTopology(h(5, 6), { nodes: two, ports })).toEqual([
      {
        rule: "elastic.bounds",
        message: "Horovod Elastic bounds must satisfy minNp <= nodes x gpusPerNode <= maxNp; got 5 <= 4 <= 6",
      },
      { rule: "world.size", message: "maxNp is 6 but the cluster offers at most 4 slots (2 nodes with 2 GPUs each)" },
    ]);
  });
});
