export interface HttpCallOptions {
  /** JSON-encoded as the body (with Content-Type: application/json unless given). */
  body?: unknown;
  /** Sent as the body as is. */
  raw?: string;
  /** Bearer token; null sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of the API under test
export type Json = any;

/** One request to the API under test; the body comes back as text and, when it is JSON, parsed. */
export async function httpCall(
  baseUrl: string,
  method: string,
  path: string,
  opts: HttpCallOptions = {},
): Promise<{ status: number; json: Json; text: string; headers: Headers }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const body = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type"))
    headers["content-type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}
