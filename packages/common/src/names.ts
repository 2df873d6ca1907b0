import { z } from "zod";

/** Names of clusters, nodes, jobs and projects: safe in paths, URLs and shell words. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, "must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");

/** Environment variable names accepted from users (POSIX portable names). */
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Variables Trainyard sets itself; users may not override them. */
export const RESERVED_ENV_PREFIX = "TRAINYARD_";
export const envKeySchema = z
  .string()
  .regex(ENV_KEY_PATTERN, "environment variable names must match [A-Za-z_][A-Za-z0-9_]*")
  .refine((k) => !k.startsWith(RESERVED_ENV_PREFIX), {
    message: `names starting with ${RESERVED_ENV_PREFIX} are reserved`,
  });
export const envSchema = z
  .record(z.string(), z.string().max(32_768, "environment values are limited to 32 KiB"))
  .superRefine((env, ctx) => {
    const keys = Object.keys(env);
    if (keys.length > 256) ctx.addIssue({ code: "custom", message: "at most 256 environment variables" });
    for (const key of keys) {
      const r = envKeySchema.safeParse(key);
      if (!r.success) ctx.addIssue({ code: "custom", path: [key], message: `'${key}': ${r.error.issues[0]?.message}` });
    }
  });

/** Unix account names as useradd accepts them. */
export const unixUserSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name ([a-z_][a-z0-9_-]*, at most 32 characters)");

/** Host names and IP addresses (v4, or v6 without brackets). */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$/,
    "must be a host name or IP address",
  );

/** Absolute paths on a node: no '..', no shell metacharacters. */
export const absolutePathSchema = z
  .string()
  .max(1024)
  .regex(/^\/([A-Za-z0-9._+-]+\/?)*$/, "must be an absolute path of letters, digits, '.', '_', '+', '-' and '/'")
  .refine((p) => !p.split("/").includes(".."), { message: "must not contain '..'" });

/** Relative file paths inside a job's directory. */
export const relativePathSchema = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "must be a relative path of letters, digits, '.', '_', '-' and '/'")
  .refine((p) => !p.split("/").some((s) => s === ".." || s === "."), { message: "must not contain '.' or '..' segments" });

export const SHA256_FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{43}$/;
export const fingerprintSchema = z
  .string()
  .regex(SHA256_FINGERPRINT_PATTERN, "must be an OpenSSH SHA256 fingerprint like SHA256:<43 base64 characters>");
