import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { clusterSpecSchema, jobSpecSchema, MAX_INLINE_FILES_BYTES } from "@trainyard/common";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { CliError, EXIT } from "./exit";

/** A YAML or JSON document from a file (JSON is YAML; `.json` files are parsed strictly as JSON). */
export function readDocument(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.USAGE);
  }
  let doc: unknown;
  try {
    doc = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new CliError(`${path} is not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}`, EXIT.USAGE);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc))
    throw new CliError(`${path} must hold one object (a mapping)`, EXIT.USAGE);
  return doc as Record<string, unknown>;
}

/** `~/x` → home, relative → relative to the spec file's folder. */
export function resolveFrom(specPath: string, p: string): string {
  if (p === "~" || p.startsWith("~/")) return join(homedir(), p.slice(1));
  return isAbsolute(p) ? p : resolve(dirname(specPath), p);
}

function readFileFor(specPath: string, field: string, p: string, limit: number): string {
  const full = resolveFrom(specPath, p);
  let size: number;
  try {
    const st = statSync(full);
    if (!st.isFile()) throw new CliError(`${field}: ${full} is not a file`, EXIT.USAGE);
    size = st.size;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(
      `${field}: cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      EXIT.USAGE,
    );
  }
  if (size > limit) throw new CliError(`${field}: ${full} is ${size} bytes, over the ${limit}-byte limit`, EXIT.USAGE);
  return readFileSync(full, "utf8");
}

export function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

/**
 * A job spec ready for POST /v1/jobs. The API takes files inline (`files: {name: content}`), so a
 * value written `@path` is read from disk, relative to the spec file; a list of paths
 * (`files: [train.py, lib/util.py]`) inlines each under its relative path. Checked locally with
 * the API's own schema first, so a typo costs no request.
 */
export function loadJobSpec(path: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const doc = { ...readDocument(path), ...overrides };
  const files = doc.files;
  if (Array.isArray(files)) {
    const out: Record<string, string> = {};
    for (const f of files) {
      if (typeof f !== "string") throw new CliError(`${path}: files: a list must hold file paths`, EXIT.USAGE);
      out[f] = readFileFor(path, `files.${f}`, f, MAX_INLINE_FILES_BYTES);
    }
    doc.files = out;
  } else if (files && typeof files === "object") {
    const out: Record<string, string> = {};
    for (const [name, v] of Object.entries(files as Record<string, unknown>)) {
      if (typeof v !== "string") throw new CliError(`${path}: files.${name} must be a string (content, or @path)`, EXIT.USAGE);
      out[name] = v.startsWith("@") ? readFileFor(path, `files.${name}`, v.slice(1), MAX_INLINE_FILES_BYTES) : v;
    }
    doc.files = out;
  }
  const parsed = jobSpecSchema.safeParse(doc);
  if (!parsed.success) throw new CliError(`${path}: invalid job spec: ${issuesText(parsed.error)}`, EXIT.USAGE);
  return doc;
}

/**
 * A cluster spec ready for POST /v1/clusters. The private key is never written in the YAML: it is
 * read from `ssh.privateKeyFile` (and an optional passphrase from `ssh.passphraseFile`).
 */
export function loadClusterSpec(path: string): Record<string, unknown> {
  const doc = readDocument(path);
  const ssh = doc.ssh;
  if (!ssh || typeof ssh !== "object" || Array.isArray(ssh))
    throw new CliError(`${path}: ssh: missing; give ssh.privateKeyFile (a path to the private key file)`, EXIT.USAGE);
  const { privateKeyFile, passphraseFile, ...rest } = ssh as Record<string, unknown>;
  if ("privateKey" in rest)
    throw new CliError(
      `${path}: ssh.privateKey: keys are not written inline; put the key in a file (mode 0600) and name it with ssh.privateKeyFile`,
      EXIT.USAGE,
    );
  if ("passphrase" in rest)
    throw new CliError(`${path}: ssh.passphrase: not inline; name a file holding it with ssh.passphraseFile`, EXIT.USAGE);
  if (typeof privateKeyFile !== "string" || !privateKeyFile)
    throw new CliError(`${path}: ssh.privateKeyFile: required (a path to the private key file)`, EXIT.USAGE);
  const out: Record<string, unknown> = {
    ...rest,
    privateKey: readFileFor(path, "ssh.privateKeyFile", privateKeyFile, 16_384),
  };
  if (passphraseFile !== undefined) {
    if (typeof passphraseFile !== "string") throw new CliError(`${path}: ssh.passphraseFile must be a path`, EXIT.USAGE);
    out.passphrase = readFileFor(path, "ssh.passphraseFile", passphraseFile, 1024).replace(/\r?\n$/, "");
  }
  const spec = { ...doc, ssh: out };
  const parsed = clusterSpecSchema.safeParse(spec);
  // Never echo the key: issues name paths and rules only.
  if (!parsed.success) throw new CliError(`${path}: invalid cluster spec: ${issuesText(parsed.error)}`, EXIT.USAGE);
  return spec;
}
