import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { StorageCredentials } from "./credentials";
import type { ObjectBackend } from "./types";

/** What scripts/infra/emulators.sh wrote: one local server per object-store protocol. */
export interface Emulators {
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; server: string };
  azure: { connectionString: string; blobEndpoint: string; accountName: string; accountKey: string; server: string };
  gcs: { apiEndpoint: string; projectId: string; server: string };
}

export const INFRA_DIR = process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra";
export const EMULATORS_FILE = join(INFRA_DIR, "emulators.json");

/** The emulators' endpoints and credentials, or null when emulators.sh has not run. */
export function loadEmulators(file = EMULATORS_FILE): Emulators | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, "utf8")) as Emulators;
}

/** A fresh bucket/container name (valid for every backend): `<prefix>-<time>-<random>`. */
export function uniqueBucketName(prefix = "ty"): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** Credentials for `bucket` on the local emulator of `backend`. */
export function emulatorCredentials(emulators: Emulators, backend: ObjectBackend, bucket: string): StorageCredentials {
  switch (backend) {
    case "s3":
      return {
        backend: "s3",
        bucket,
        endpoint: emulators.s3.endpoint,
        region: emulators.s3.region,
        forcePathStyle: true,
        accessKeyId: emulators.s3.accessKeyId,
        secretAccessKey: emulators.s3.secretAccessKey,
      };
    case "azure":
      return { backend: "azure", container: bucket, connectionString: emulators.azure.connectionString };
    case "gcs":
      return { backend: "gcs", bucket, apiEndpoint: emulators.gcs.apiEndpoint, projectId: emulators.gcs.projectId };
  }
}
