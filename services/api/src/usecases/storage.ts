import { nameSchema, notFound } from "@trainyard/common";
import type { StorageCredentialDoc } from "@trainyard/db";
import { storageCredentialsSchema } from "@trainyard/storage";
import { z } from "zod";
import type { ApiDeps } from "../context";

export const storageCredentialBodySchema = z.object({ name: nameSchema, credentials: storageCredentialsSchema }).strict();

export interface StorageCredentialView {
  id: string;
  name: string;
  backend: string;
  bucket: string;
  createdAt: string;
}

const view = (d: StorageCredentialDoc): StorageCredentialView => ({
  id: d._id.toString(),
  name: d.name,
  backend: d.backend,
  bucket: d.bucket,
  createdAt: new Date(d.createdAt).toISOString(),
});

/** Register object-store credentials for checkpoint copies; the secret parts are sealed and never returned. */
export async function registerStorageCredentials(
  deps: ApiDeps,
  team: string,
  { name, credentials }: z.output<typeof storageCredentialBodySchema>,
): Promise<StorageCredentialView> {
  const bucket = "bucket" in credentials ? credentials.bucket : credentials.container;
  return view(await deps.repos.storageCredentials.create(team, name, { backend: credentials.backend, bucket }, credentials));
}

export async function listStorageCredentials(deps: ApiDeps, team: string): Promise<{ items: StorageCredentialView[] }> {
  return { items: (await deps.repos.storageCredentials.list(team)).map(view) };
}

export async function deleteStorageCredentials(deps: ApiDeps, team: string, name: string): Promise<void> {
  if (!(await deps.repos.storageCredentials.delete(team, name))) throw notFound(`storage credentials '${name}'`);
}
