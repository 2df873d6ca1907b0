import type {
  ApiKeyView,
  BudgetView,
  CheckpointView,
  ClusterView,
  CostReport,
  JobSpecInput,
  JobView,
  Quota,
  Role,
  TeamView,
} from "@trainyard/common";
import { CliError, EXIT, exitCodeForHttpStatus } from "./exit";
import { parseSse, type SseEvent } from "./sse";

/** An error answer of the API, shown as it came: status and message. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly apiMessage: string,
    readonly details?: unknown,
  ) {
    super(`${status} ${apiMessage}`, exitCodeForHttpStatus(status));
  }
}

export interface Me {
  keyId: string;
  keyName: string;
  team: string;
  role: Role;
  quota: Quota;
}

export interface CheckResult {
  nodes: Array<{
    node: string;
    reachable: boolean;
    hostKeyFingerprint?: string;
    pinned?: boolean;
    gpus?: number;
    error?: string;
    hostKeyMismatch?: boolean;
    pinnedNow?: boolean;
  }>;
}

export interface JobPage {
  items: JobView[];
  total?: number;
  limit?: number;
  offset?: number;
}

export interface LogChunk {
  text: string;
  nextOffset: number;
  node: string;
  attempt: string;
}

/** A thin typed client of the public HTTP API (docs/api.md); nothing else. */
export class ApiClient {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach the API at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
        EXIT.UNAVAILABLE,
      );
    }
    return res;
  }

  async request<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.raw(method, path, body, headers);
    const text = await res.text();
    if (!res.ok) throw apiErrorOf(res.status, text);
    if (res.status === 204 || text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`the API answered ${res.status} with something that is not JSON`, EXIT.UNAVAILABLE);
    }
  }

  me = () => this.request<Me>("GET", "/v1/me");
  listClusters = () => this.request<{ items: ClusterView[] }>("GET", "/v1/clusters");
  getCluster = (id: string) => this.request<ClusterView>("GET", `/v1/clusters/${enc(id)}`);
  addCluster = (spec: unknown) => this.request<ClusterView>("POST", "/v1/clusters", spec);
  checkCluster = (id: string) => this.request<CheckResult>("POST", `/v1/clusters/${enc(id)}/check`);
  submitJob = (spec: JobSpecInput | Record<string, unknown>, idempotencyKey?: string) =>
    this.request<{ id: string; status: string }>(
      "POST",
      "/v1/jobs",
      spec,
      idempotencyKey ? { "idempotency-key": idempotencyKey } : {},
    );
  listJobs = (q: { status?: string; project?: string; limit?: number }) => this.request<JobPage>("GET", `/v1/jobs${query(q)}`);
  getJob = (id: string) => this.request<JobView>("GET", `/v1/jobs/${enc(id)}`);
  cancelJob = (id: string) => this.request<JobView>("POST", `/v1/jobs/${enc(id)}/cancel`);
  checkpoints = (id: string) => this.request<{ items: CheckpointView[] }>("GET", `/v1/jobs/${enc(id)}/checkpoints`);
  costs = (q: { groupBy?: string; from?: string; to?: string; project?: string }) =>
    this.request<CostReport>("GET", `/v1/costs${query(q)}`);
  budgets = () => this.request<{ items: BudgetView[] }>("GET", "/v1/budgets");
  listTeams = () => this.request<{ items: TeamView[] }>("GET", "/v1/teams");
  createTeam = (body: { name: string; quota?: Quota }) => this.request<TeamView>("POST", "/v1/teams", body);
  listKeys = (team: string) => this.request<{ items: ApiKeyView[] }>("GET", `/v1/teams/${enc(team)}/keys`);
  issueKey = (team: string, body: { name: string; role: Role; expiresInDays?: number }) =>
    this.request<ApiKeyView & { key: string }>("POST", `/v1/teams/${enc(team)}/keys`, body);
  revokeKey = (team: string, keyId: string) => this.request<void>("DELETE", `/v1/teams/${enc(team)}/keys/${enc(keyId)}`);

  /** One chunk of a node's log from a byte offset. */
  async logChunk(id: string, q: { node?: string; from?: number; maxBytes?: number }): Promise<LogChunk> {
    const res = await this.raw("GET", `/v1/jobs/${enc(id)}/logs${query(q)}`);
    const text = await res.text();
    if (!res.ok) throw apiErrorOf(res.status, text);
    return {
      text,
      nextOffset: Number(res.headers.get("x-log-next-offset") ?? (q.from ?? 0) + Buffer.byteLength(text)),
      node: res.headers.get("x-log-node") ?? q.node ?? "",
      attempt: res.headers.get("x-log-attempt") ?? "",
    };
  }

  /** The API's live log stream (Server-Sent Events), as parsed events. */
  async *followLogs(
    id: string,
    q: { node?: string; from?: number },
    signal?: AbortSignal,
  ): AsyncGenerator<SseEvent & { node: string; attempt: string }> {
    const res = await this.raw("GET", `/v1/jobs/${enc(id)}/logs${query({ ...q, follow: "true" })}`, undefined, {}, signal);
    if (!res.ok) throw apiErrorOf(res.status, await res.text());
    if (!res.body) throw new CliError("the API sent no log stream", EXIT.UNAVAILABLE);
    const node = res.headers.get("x-log-node") ?? q.node ?? "";
    const attempt = res.headers.get("x-log-attempt") ?? "";
    for await (const ev of parseSse(res.body)) yield { ...ev, node, attempt };
  }
}

const enc = encodeURIComponent;

export function query(q: Record<string, string | number | undefined>): string {
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** `{"error":{"message":…}}` as the API sends it; anything else as its first line of text. */
export function apiErrorOf(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { message?: string; details?: unknown } };
    if (body?.error?.message) return new ApiError(status, body.error.message, body.error.details);
  } catch {
    // not JSON
  }
  return new ApiError(status, text.trim().split("\n")[0]?.slice(0, 500) || "(empty answer)");
}
