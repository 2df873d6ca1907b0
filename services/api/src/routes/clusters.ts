import { clusterSharingSchema, clusterSpecSchema } from "@trainyard/common";
import { z } from "zod";
import type { ApiDeps } from "../context";
import type { Principal } from "../http/auth";
import type { ApiRoute } from "../http/route-table";
import { clusterViewSchema, itemsOf, objectWith } from "../http/schemas";
import {
  acknowledgeGpus,
  checkCluster,
  cordonBodySchema,
  cordonNode,
  getCluster,
  listClusters,
  registerCluster,
  shareCluster,
  uncordonNode,
} from "../usecases/clusters";

/** How an admin action names its actor in the cluster (key name and id; never the key itself). */
const actorName = (p: Principal) => `${p.keyName} (${p.keyId})`;

export function clusterRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    {
      method: "post",
      path: "/v1/clusters",
      operationId: "registerCluster",
      summary: "Register a cluster: nodes, SSH key (sealed at rest, never returned), pinned host keys",
      tag: "clusters",
      role: "admin",
      scope: "team",
      body: clusterSpecSchema,
      ok: { status: 201, description: "registered", schema: clusterViewSchema, names: "id" },
      audit: "cluster.register",
      handle: ({ req, team }) => registerCluster(deps, team, req.body),
    },
    {
      method: "get",
      path: "/v1/clusters",
      operationId: "listClusters",
      summary: "The team's clusters and those shared with it",
      tag: "clusters",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "clusters", schema: itemsOf(clusterViewSchema) },
      handle: async ({ team }) => ({ items: await listClusters(deps, team) }),
    },
    {
      method: "get",
      path: "/v1/clusters/{id}",
      operationId: "getCluster",
      summary: "One cluster, by id or name",
      tag: "clusters",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "the cluster", schema: clusterViewSchema },
      handle: ({ team, params }) => getCluster(deps, team, params.id!),
    },
    {
      method: "post",
      path: "/v1/clusters/{id}/check",
      operationId: "checkCluster",
      summary: "Connect to every node; with trustOnFirstUse, pin the keys of nodes that have none",
      tag: "clusters",
      role: "admin",
      scope: "team",
      ok: { status: 200, description: "per-node report", schema: objectWith({ nodes: z.array(z.unknown()) }) },
      audit: "cluster.check",
      handle: ({ team, params }) => checkCluster(deps, team, params.id!),
    },
    {
      method: "post",
      path: "/v1/clusters/{id}/nodes/{node}/acknowledge-gpus",
      operationId: "acknowledgeNodeGpus",
      summary: "Accept the GPU mismatch the last check found on a node, so it takes placements again",
      tag: "clusters",
      role: "admin",
      scope: "team",
      ok: { status: 200, description: "the cluster", schema: clusterViewSchema },
      audit: "cluster.acknowledge-gpus",
      handle: ({ team, params, principal }) => acknowledgeGpus(deps, team, params.id!, params.node!, actorName(principal)),
    },
    {
      method: "post",
      path: "/v1/clusters/{id}/nodes/{node}/cordon",
      operationId: "cordonNode",
      summary: "Stop placing new jobs on a node (running jobs stay)",
      tag: "clusters",
      role: "admin",
      scope: "team",
      body: cordonBodySchema,
      ok: { status: 200, description: "the cluster", schema: clusterViewSchema },
      audit: "cluster.cordon",
      handle: ({ req, team, params, principal }) =>
        cordonNode(deps, team, params.id!, params.node!, req.body, actorName(principal), false),
    },
    {
      method: "post",
      path: "/v1/clusters/{id}/nodes/{node}/drain",
      operationId: "drainNode",
      summary: "Cordon a node and move its running jobs elsewhere (each resumes from its latest checkpoint)",
      tag: "clusters",
      role: "admin",
      scope: "team",
      body: cordonBodySchema,
      ok: { status: 200, description: "the cluster and the ids of the jobs moved", schema: clusterViewSchema },
      audit: "cluster.drain",
      handle: ({ req, team, params, principal }) =>
        cordonNode(deps, team, params.id!, params.node!, req.body, actorName(principal), true),
    },
    {
      method: "post",
      path: "/v1/clusters/{id}/nodes/{node}/uncordon",
      operationId: "uncordonNode",
      summary: "Put a node back into placement (clears a cordon, a drain and a recorded fault)",
      tag: "clusters",
      role: "admin",
      scope: "team",
      ok: { status: 200, description: "the cluster", schema: clusterViewSchema },
      audit: "cluster.uncordon",
      handle: ({ team, params }) => uncordonNode(deps, team, params.id!, params.node!),
    },
    {
      method: "put",
      path: "/v1/clusters/{id}/sharing",
      operationId: "shareCluster",
      summary: "Set the teams an owned cluster is shared with (they may run jobs on it)",
      tag: "clusters",
      role: "admin",
      scope: "team",
      body: clusterSharingSchema,
      ok: { status: 200, description: "the cluster", schema: clusterViewSchema },
      audit: "cluster.share",
      handle: ({ req, team, params }) => shareCluster(deps, team, params.id!, req.body),
    },
  ];
}
