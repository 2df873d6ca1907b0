import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterSpecSchema, jobSpecSchema, ncclSettingsSchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import { ncclEnv } from "./node-env";
import { ATTEMPT_FILES } from "./node-protocol";
import { planJob } from "./plan";
import type { PlanInput } from "./plan-types";

const spec = (env: Record<string, string> = {}) =>
  jobSpecSchema.parse({
    name: "demo",
    framework: "command",
    cluster: "lab",
    resources: { nodes: 2, gpusPerNode: 1 },
    command: ["python3", "train.py"],
    env,
  });

const input = (over: Partial<PlanInput>, env: Record<string, string> = {}): PlanInput => ({
  jobId: "job-1",
  attemptId: "job-1-a1",
  attemptNumber: 1,
  spec: spec(env),
  clusterEnv: { PATH: "/usr/bin:/bin" },
  nodes: [
    { name: "a", host: "10.0.0.11", workRoot: "/srv/ty", gpuIndices: [0], ports: [29500, 29501, 29502, 29503] },
    {
      name: "b",
      host: "10.0.0.12",
      workRoot: "/srv/ty",
      gpuIndices: [1],
      ports: [29500, 29501, 29502, 29503],
      nccl: { socketIfname: "ens5", ibHca: "^mlx5_2" },
    },
  ],
  ...over,
});

describe("ncclEnv", () => {
  it("maps every setting to its variable, Gloo following a plain socketIfname", () => {
    expect(
      ncclEnv(
        { socketIfname: "eth0,eth1", ibHca: "mlx5_0:1,mlx5_1:1", ibDisable: false, ibGidIndex: 3, debug: "WARN" },
        undefined,
      ),
    ).toEqual({
      NCCL_SOCKET_IFNAME: "eth0,eth1",
      GLOO_SOCKET_IFNAME: "eth0,eth1",
      NCCL_IB_HCA: "mlx5_0:1,mlx5_1:1",
      NCCL_IB_DISABLE: "0",
      NCCL_IB_GID_INDEX: "3",
      NCCL_DEBUG: "WARN",
    });
    expect(ncclEnv({ ibDisable: true }, undefined)).toEqual({ NCCL_IB_DISABLE: "1" });
    expect(ncclEnv(undefined, undefined)).toEqual({});
  });

  it("does not hand Gloo NCCL's '^'/'=' syntax, which it cannot read", () => {
    expect(ncclEnv({ socketIfname: "^docker0,lo" }, undefined)).toEqual({ NCCL_SOCKET_IFNAME: "^docker0,lo" });
    expect(ncclEnv({ socketIfname: "=eth0", glooSocketIfname: "eth0" }, undefined)).toEqual({
      NCCL_SOCKET_IFNAME: "=eth0",
      GLOO_SOCKET_IFNAME: "eth0",
    });
  });

  it("lets a node override the cluster setting by setting", () => {
    expect(ncclEnv({ socketIfname: "eth0", ibDisable: true }, { socketIfname: "ens5" })).toEqual({
      NCCL_SOCKET_IFNAME: "ens5",
      GLOO_SOCKET_IFNAME: "ens5",
      NCCL_IB_DISABLE: "1",
    });
  });
});

describe("NCCL settings in the rank environment", () => {
  it("exports the cluster's settings with each node's overrides; the job's env wins", () => {
    const plan = planJob(input({ clusterNccl: { socketIfname: "eth0", ibDisable: true } }, { NCCL_DEBUG: "INFO" }));
    const [a, b] = plan.nodes;
    expect(a!.env).toMatchObject({
      NCCL_SOCKET_IFNAME: "eth0",
      GLOO_SOCKET_IFNAME: "eth0",
      NCCL_IB_DISABLE: "1",
      NCCL_DEBUG: "INFO",
      CUDA_DEVICE_ORDER: "PCI_BUS_ID",
    });
    expect(a!.env.NCCL_IB_HCA).toBeUndefined();
    expect(b!.env).toMatchObject({ NCCL_SOCKET_IFNAME: "ens5", GLOO_SOCKET_IFNAME: "ens5", NCCL_IB_HCA: "^mlx5_2" });

    const overridden = planJob(input({ clusterNccl: { socketIfname: "eth0" } }, { NCCL_SOCKET_IFNAME: "ib0" }));
    expect(overridden.nodes[0]!.env.NCCL_SOCKET_IFNAME).toBe("ib0");
  });

  it("the env file a node sources gives every rank exactly those values", () => {
    const plan = planJob(input({ clusterNccl: { socketIfname: "^docker0,lo", ibHca: "=mlx5_0:1" } }));
    const dir = mkdtempSync(join(tmpdir(), "ty-nccl-"));
    const file = join(dir, "env");
    writeFileSync(file, plan.nodes[0]!.files[ATTEMPT_FILES.env]!);
    const out = execFileSync("/bin/sh", ["-c", `. "$1" && printf '%s|%s' "$NCCL_SOCKET_IFNAME" "$NCCL_IB_HCA"`, "sh", file], {
      encoding: "utf8",
    });
    expect(out).toBe("^docker0,lo|=mlx5_0:1");
  });
});

describe("ncclSettingsSchema", () => {
  it.each([
    { socketIfname: "eth0" },
    { socketIfname: "^docker,lo" },
    { socketIfname: "=ens5f0np0" },
    { socketIfname: "bond0.100,ib0" },
    { ibHca: "mlx5_0:1,mlx5_3:1" },
    { ibHca: "^=mlx5_2" },
    { glooSocketIfname: "eth0" },
    { ibDisable: true, ibGidIndex: 3, debug: "INFO" },
  ])("accepts %j", (s) => {
    expect(ncclSettingsSchema.parse(s)).toEqual(s);
  });

  it.each([
    { socketIfname: "eth0; rm -rf /" },
    { socketIfname: "$(id)" },
    { socketIfname: "eth0 eth1" },
    { socketIfname: "a-name-longer-than-15" },
    { socketIfname: "" },
    { ibHca: "mlx5_0:1`id`" },
    { glooSocketIfname: "^docker0" },
    { ibGidIndex: 256 },
    { ibDisable: "1" },
    { debug: "LOUD" },
    { socketIfname: "eth0", extra: "x" },
  ])("refuses %j", (s) => {
    expect(ncclSettingsSchema.safeParse(s).success).toBe(false);
  });

  it("sits on the cluster and on a node of the cluster spec", () => {
    const c = clusterSpecSchema.parse({
      name: "lab",
      nodes: [
        { name: "a", host: "10.0.0.11", user: "t", gpus: 8, workRoot: "/w", nccl: { socketIfname: "ens5" } },
        { name: "b", host: "10.0.0.12", user: "t", gpus: 8, workRoot: "/w" },
      ],
      ssh: { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", trustOnFirstUse: true },
      nccl: { socketIfname: "eth0", ibDisable: true },
    });
    expect(c.nccl).toEqual({ socketIfname: "eth0", ibDisable: true });
    expect(c.nodes[0]!.nccl).toEqual({ socketIfname: "ens5" });
    const bad = clusterSpecSchema.safeParse({ ...c, ssh: { ...c.ssh }, nccl: { socketIfname: "eth0|nc" } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues[0]?.path)).toBe('["nccl","socketIfname"]');
  });
});
