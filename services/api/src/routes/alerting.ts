import { alertChannelInputSchema } from "@trainyard/common";
import type { ApiDeps } from "../context";
import { type ApiRoute, defineRoute } from "../http/route-table";
import { idView, itemsOf, pageOf } from "../http/schemas";
import {
  alertsQuerySchema,
  createAlertChannel,
  deleteAlertChannel,
  getAlertChannel,
  listAlertChannels,
  listAlertDeliveries,
  updateAlertChannel,
} from "../usecases/alerting";

export function alertingRoutes(deps: ApiDeps): ApiRoute[] {
  const channel = { tag: "alerts", scope: "team" } as const;
  return [
    defineRoute({
      ...channel,
      method: "post",
      path: "/v1/alert-channels",
      operationId: "createAlertChannel",
      summary: "Add an alert channel (signed webhook, Slack, email); secrets sealed, never returned",
      role: "admin",
      body: alertChannelInputSchema,
      ok: { status: 201, description: "created", schema: idView, names: "id" },
      audit: "alert-channel.create",
      handle: ({ team, body }) => createAlertChannel(deps, team, body),
    }),
    defineRoute({
      ...channel,
      method: "get",
      path: "/v1/alert-channels",
      operationId: "listAlertChannels",
      summary: "The team's alert channels",
      role: "viewer",
      ok: { status: 200, description: "channels", schema: itemsOf(idView) },
      handle: async ({ team }) => ({ items: await listAlertChannels(deps, team) }),
    }),
    defineRoute({
      ...channel,
      method: "get",
      path: "/v1/alert-channels/{id}",
      operationId: "getAlertChannel",
      summary: "One alert channel",
      role: "viewer",
      ok: { status: 200, description: "the channel", schema: idView },
      handle: ({ team, params }) => getAlertChannel(deps, team, params.id!),
    }),
    defineRoute({
      ...channel,
      method: "put",
      path: "/v1/alert-channels/{id}",
      operationId: "updateAlertChannel",
      summary: "Replace an alert channel's settings",
      role: "admin",
      body: alertChannelInputSchema,
      ok: { status: 200, description: "the channel", schema: idView },
      audit: "alert-channel.update",
      handle: ({ team, params, body }) => updateAlertChannel(deps, team, params.id!, body),
    }),
    defineRoute({
      ...channel,
      method: "delete",
      path: "/v1/alert-channels/{id}",
      operationId: "deleteAlertChannel",
      summary: "Delete an alert channel",
      role: "admin",
      ok: { status: 204, description: "deleted" },
      audit: "alert-channel.delete",
      async handle({ team, params }) {
        await deleteAlertChannel(deps, team, params.id!);
        return null;
      },
    }),
    defineRoute({
      ...channel,
      method: "get",
      path: "/v1/alerts",
      operationId: "listAlertDeliveries",
      summary: "The delivery log: every alert routed to a channel, each attempt and its outcome",
      role: "viewer",
      query: alertsQuerySchema,
      ok: { status: 200, description: "deliveries", schema: pageOf(idView) },
      handle: ({ team, query }) => listAlertDeliveries(deps, team, query),
    }),
  ];
}
