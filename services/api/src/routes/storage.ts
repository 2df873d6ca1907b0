import type { ApiDeps } from "../context";
import { type ApiRoute, defineRoute } from "../http/route-table";
import { itemsOf, namedView } from "../http/schemas";
import {
  deleteStorageCredentials,
  listStorageCredentials,
  registerStorageCredentials,
  storageCredentialBodySchema,
} from "../usecases/storage";

export function storageRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    defineRoute({
      method: "post",
      path: "/v1/storage-credentials",
      operationId: "registerStorageCredentials",
      summary: "Store object-store credentials (S3, Azure, GCS) for checkpoints; sealed, never returned",
      tag: "checkpoints",
      role: "admin",
      scope: "team",
      body: storageCredentialBodySchema,
      ok: { status: 201, description: "stored", schema: namedView, names: "name" },
      audit: "storage-credential.create",
      handle: ({ team, body }) => registerStorageCredentials(deps, team, body),
    }),
    defineRoute({
      method: "get",
      path: "/v1/storage-credentials",
      operationId: "listStorageCredentials",
      summary: "The team's storage credentials (names and kinds only)",
      tag: "checkpoints",
      role: "viewer",
      scope: "team",
      ok: { status: 200, description: "credentials", schema: itemsOf(namedView) },
      handle: ({ team }) => listStorageCredentials(deps, team),
    }),
    defineRoute({
      method: "delete",
      path: "/v1/storage-credentials/{name}",
      operationId: "deleteStorageCredentials",
      summary: "Delete storage credentials",
      tag: "checkpoints",
      role: "admin",
      scope: "team",
      ok: { status: 204, description: "deleted" },
      audit: "storage-credential.delete",
      async handle({ team, params }) {
        await deleteStorageCredentials(deps, team, params.name!);
        return null;
      },
    }),
  ];
}
