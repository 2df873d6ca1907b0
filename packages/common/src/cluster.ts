import { z } from "zod";
import { absolutePathSchema, envSchema, fingerprintSchema, hostSchema, nameSchema, unixUserSchema } from "./names";

const portSchema = z.number().int().min(1).max(65535);

/** Interface names as Linux allows them (at most 15 characters), without anything a shell reads. */
const IFNAME = "[A-Za-z0-9_.:-]{1,15}";
/** NCCL's list syntax: comma-separated prefixes, `^` to exclude them, `=` for exact names. */
const ncclList = (item: string, what: string) =>
  z
    .string()
    .max(256)
    .regex(
      new RegExp(`^\\^?=?${item}(,${item})*$`),
      `must be ${what}, comma-separated, optionally after '^' (exclude) or '=' (exact)`,
    );

/**
 * How NCCL (and Gloo) reach the other nodes, exported to every rank as NCCL_* variables
 * (docs/api.md lists the mapping). Cluster-wide, with per-node overrides for nodes whose
 * interfaces differ.
 */
export const ncclSettingsSchema = z
  .object({
    /** NCCL_SOCKET_IFNAME, e.g. "eth0", "^docker0,lo", "=ens5". */
    socketIfname: ncclList(IFNAME, "interface names"),
    /** GLOO_SOCKET_IFNAME (plain names); defaults to socketIfname when that is a plain list. */
    glooSocketIfname: z
      .string()
      .max(256)
      .regex(new RegExp(`^${IFNAME}(,${IFNAME})*$`), "must be interface names, comma-separated"),
    /** NCCL_IB_HCA, e.g. "mlx5_0:1,mlx5_1:1" or "^mlx5_2". */
    ibHca: ncclList("[A-Za-z0-9_.-]{1,64}(:[0-9]{1,3})?", "HCA names with an optional :port"),
    /** NCCL_IB_DISABLE=1: use sockets even where InfiniBand/RoCE is present. */
    ibDisable: z.boolean(),
    /** NCCL_IB_GID_INDEX (RoCE). */
    ibGidIndex: z.number().int().min(0).max(255),
    /** NCCL_DEBUG. */
    debug: z.enum(["VERSION", "WARN", "INFO", "TRACE"]),
  })
  .partial()
  .strict();
export type NcclSettings = z.infer<typeof ncclSettingsSchema>;

export const nodeSpecSchema = z
  .object({
    name: nameSchema,
    host: hostSchema,
    port: portSchema.default(22),
    user: unixUserSchema,
    gpus: z.number().int().min(0).max(64),
    gpuType: nameSchema.default("cpu"),
    workRoot: absolutePathSchema,
    /** Overrides the cluster's `nccl`, setting by setting, on this node. */
    nccl: ncclSettingsSchema.optional(),
  })
  .strict();
export type NodeSpec = z.infer<typeof nodeSpecSchema>;

/** POST /v1/clusters/:id/nodes: one more node, with its host key (required unless the cluster trusts on first use). */
export const addNodeSchema = nodeSpecSchema.extend({ hostKey: fingerprintSchema.optional() }).strict();
export type AddNode = z.infer<typeof addNodeSchema>;

/** PUT /v1/clusters/:id/nodes/:node/host-key: the key a re-imaged node presents now. */
export const hostKeySchema = z.object({ fingerprint: fingerprintSchema }).strict();

export const jumpHostSchema = z
  .object({ host: hostSchema, port: portSchema.default(22), user: unixUserSchema, hostKey: fingerprintSchema })
  .strict();
export type JumpHost = z.infer<typeof jumpHostSchema>;

export const portRangeSchema = z
  .object({ min: z.number().int().min(1024).max(65535), max: z.number().int().min(1024).max(65535) })
  .strict()
  .refine((r) => r.max - r.min >= 15, { message: "port range must hold at least 16 ports (max - min >= 15)" });
export type PortRange = z.infer<typeof portRangeSchema>;
export const DEFAULT_PORT_RANGE: PortRange = { min: 29500, max: 29999 };

export const clusterSshSchema = z
  .object({
    privateKey: z
      .string()
      .max(16_384)
      .refine((k) => k.includes("PRIVATE KEY-----"), { message: "must be a PEM/OpenSSH private key" }),
    passphrase: z.string().max(1024).optional(),
    /** Pinned host-key fingerprints by node name. */
    hostKeys: z.record(nameSchema, fingerprintSchema).default({}),
    /** Allow POST /v1/clusters/:id/check to pin keys of nodes that have none yet. */
    trustOnFirstUse: z.boolean().default(false),
    jumpHost: jumpHostSchema.optional(),
  })
  .strict();

export const clusterSpecSchema = z
  .object({
    name: nameSchema,
    /** Other teams whose jobs may use this cluster. */
    sharedWith: z.array(nameSchema).max(100).default([]),
    nodes: z.array(nodeSpecSchema).min(1).max(256),
    ssh: clusterSshSchema,
    env: envSchema.default({}),
    nccl: ncclSettingsSchema.optional(),
    ports: portRangeSchema.default(DEFAULT_PORT_RANGE),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    const endpoints = new Set<string>();
    c.nodes.forEach((n, i) => {
      if (seen.has(n.name))
        ctx.addIssue({ code: "custom", path: ["nodes", i, "name"], message: `duplicate node name '${n.name}'` });
      seen.add(n.name);
      const ep = `${n.user}@${n.host}:${n.port}`;
      if (endpoints.has(ep))
        ctx.addIssue({ code: "custom", path: ["nodes", i, "host"], message: `node '${n.name}' repeats ${ep}` });
      endpoints.add(ep);
    });
    for (const name of Object.keys(c.ssh.hostKeys)) {
      if (!seen.has(name)) ctx.addIssue({ code: "custom", path: ["ssh", "hostKeys", name], message: `no node named '${name}'` });
    }
    if (!c.ssh.trustOnFirstUse) {
      for (const n of c.nodes) {
        if (!c.ssh.hostKeys[n.name])
          ctx.addIssue({
            code: "custom",
            path: ["ssh", "hostKeys"],
            message: `node '${n.name}' has no pinned host key; give one or set ssh.trustOnFirstUse and call POST /v1/clusters/:id/check`,
          });
      }
    }
  })
  .meta({
    examples: [
      {
        name: "gpu-a",
        nodes: [
          { name: "a1", host: "10.0.0.11", port: 22, user: "train", gpus: 8, gpuType: "h100", workRoot: "/scratch/trainyard" },
          { name: "a2", host: "10.0.0.12", port: 22, user: "train", gpus: 8, gpuType: "h100", workRoot: "/scratch/trainyard" },
        ],
        ssh: {
          privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n…\n-----END OPENSSH PRIVATE KEY-----\n",
          hostKeys: {
            a1: "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
            a2: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
          },
        },
        sharedWith: [],
      },
    ],
  });
export type ClusterSpec = z.infer<typeof clusterSpecSchema>;

export const clusterSharingSchema = z.object({ teams: z.array(nameSchema).max(100) }).strict();

/**
 * What the last check found on a node with nvidia-smi, and how it compares with the declared
 * `gpus`/`gpuType`. A node with a `mismatch` nobody acknowledged gets no new placement.
 */
export interface NodeGpuCheck {
  checkedAt: string;
  nvidiaSmi: boolean;
  gpus: Array<{ index: number; name: string; uuid: string; memoryMiB?: number; pciBusId: string }>;
  driverVersion?: string;
  cudaVersion?: string;
  error?: string;
  /** How the node differs from what was declared; empty when it matches. */
  mismatch: string[];
  /** The mismatch someone accepted (POST …/nodes/:node/acknowledge-gpus); a different one blocks again. */
  acknowledged?: { mismatch: string[]; at: string; by: string };
}

/** Whether a node declared with `nodeType` serves a job asking for `wanted` (none asked: any node). */
export function gpuTypeMatches(nodeType: string, wanted: string | undefined): boolean {
  return wanted === undefined || nodeType.toLowerCase() === wanted.toLowerCase();
}

/** An admin took the node out of placement; with `drain`, its running jobs were moved off too. */
export interface NodeCordon {
  by: string;
  at: string;
  drain: boolean;
  reason?: string;
}

/** A node found faulty (GPU faults, failed nvidia-smi): no placement until uncordoned or a clean check. */
export interface NodeHealth {
  state: "unhealthy";
  reasons: string[];
  at: string;
  /** Who found it: a cluster check or the monitor's probe of a running attempt. */
  source: "check" | "monitor";
}

/** The per-node state that decides placement, beside the declared NodeSpec. */
export interface NodePlacementState {
  name: string;
  gpuCheck?: NodeGpuCheck | undefined;
  cordon?: NodeCordon | undefined;
  health?: NodeHealth | undefined;
}

/** Why a node gets no new placement right now, or undefined when it may get one. */
export function placementBlock(node: NodePlacementState): string | undefined {
  if (node.health) return `node ${node.name} is unhealthy (${node.health.reasons.join("; ")})`;
  if (node.cordon) {
    const why = node.cordon.reason ? `: ${node.cordon.reason}` : "";
    return `node ${node.name} is ${node.cordon.drain ? "drained" : "cordoned"} by ${node.cordon.by}${why}`;
  }
  const c = node.gpuCheck;
  if (!c || c.mismatch.length === 0) return undefined;
  const ack = c.acknowledged?.mismatch;
  if (ack && ack.length === c.mismatch.length && ack.every((m, i) => m === c.mismatch[i])) return undefined;
  return `node ${node.name}: GPUs differ from the declaration (${c.mismatch.join("; ")}); acknowledge or fix it`;
}

/** A cluster as the API returns it: never the private key or passphrase. */
export interface ClusterView {
  id: string;
  name: string;
  /** The owning team. */
  team: string;
  /** Teams the cluster is shared with; shown to its owner only. */
  sharedWith?: string[];
  /** `gpusUsed`: GPUs of the node reserved by jobs now. */
  nodes: Array<
    NodeSpec & { gpusUsed: number; gpuCheck?: NodeGpuCheck; cordon?: NodeCordon; health?: NodeHealth; placementBlocked?: string }
  >;
  env: Record<string, string>;
  nccl?: NcclSettings;
  ports: PortRange;
  ssh: { hostKeys: Record<string, string>; trustOnFirstUse: boolean; jumpHost?: JumpHost; hasPassphrase: boolean };
  createdAt: string;
  updatedAt: string;
}
