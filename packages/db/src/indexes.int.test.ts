import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DocumentLocks, JobRepo, type JobsPageKey, registerModels } from "./index";
import { openTestStore, type TestStore } from "./testing";

// JobRepo.list takes no lock.
const NO_LOCKS: DocumentLocks = { withLock: (_key, fn) => fn() };

let conn: Connection;
let Job: ReturnType<typeof registerModels>["Job"];
const cluster = new Types.ObjectId();
const STATUSES = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED"] as const;

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore("idx");
  conn = store.conn;
  Job = registerModels(conn).Job;
  const base = Date.now() - 3_600_000;
  await Job.insertMany(
    Array.from({ length: 240 }, (_, i) => ({
      team: `t${i % 3}`,
      name: `j${i}`,
      project: `p${i % 4}`,
      framework: "pytorch",
      clusterId: i % 2 ? cluster : new Types.ObjectId(),
      clusterName: "c",
      spec: { name: `j${i}` },
      specHash: "h",
      idempotencyKey: `k${i}`,
      status: STATUSES[i % 4],
      attempts: [],
      // Groups of three share a createdAt: keyset pages must break ties by _id.
      createdAt: new Date(base + Math.floor(i / 3) * 1000),
      ...(i % 4 === 1 ? { startedAt: new Date(base + i * 1000) } : {}),
      ...(i % 10 === 0 ? { sshKeysPending: true } : {}),
    })),
  );
});

afterAll(() => store?.close());

type Q = {
  name: string;
  filter: Record<string, unknown>;
  sort?: Record<string, 1 | -1>;
  /** Key pattern of the index that serves it (models.ts). */
  index: Record<string, 1 | -1>;
  /** FerretDB v1.24.2 on PostgreSQL: does its explain report the filter pushed down to SQL? */
  ferretPushdown: boolean;
};
const after: JobsPageKey = { createdAt: new Date(), id: new Types.ObjectId() };
const QUERIES: Q[] = [
  {
    name: "idempotency key",
    filter: { team: "t1", idempotencyKey: "k4" },
    index: { team: 1, idempotencyKey: 1 },
    ferretPushdown: true,
  },
  {
    name: "GET /v1/jobs",
    filter: { team: "t1" },
    sort: { createdAt: -1, _id: -1 },
    index: { team: 1, createdAt: -1, _id: -1 },
    ferretPushdown: true,
  },
  {
    name: "GET /v1/jobs next page (keyset)",
    filter: {
      team: "t1",
      $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, _id: { $lt: after.id } }],
    },
    sort: { createdAt: -1, _id: -1 },
    index: { team: 1, createdAt: -1, _id: -1 },
    ferretPushdown: true,
  },
  {
    name: "GET /v1/jobs?status=",
    filter: { team: "t1", status: "QUEUED" },
    sort: { createdAt: -1, _id: -1 },
    index: { team: 1, status: 1, createdAt: -1, _id: -1 },
    ferretPushdown: true,
  },
  {
    // One query per status (JobRepo.findInStatuses): both fields are pushed down on FerretDB v1.
    name: "quota count (listByTeam)",
    filter: { team: "t1", status: "RUNNING" },
    sort: { createdAt: 1, _id: 1 },
    index: { team: 1, status: 1, createdAt: -1, _id: -1 },
    ferretPushdown: true,
  },
  {
    name: "GET /v1/jobs?project=",
    filter: { team: "t1", project: "p2" },
    sort: { createdAt: -1, _id: -1 },
    index: { team: 1, project: 1, createdAt: -1, _id: -1 },
    ferretPushdown: true,
  },
  {
    name: "the scheduler's queue page (waitingInQueueOrder)",
    filter: { clusterId: cluster, status: "QUEUED" },
    sort: { priority: -1, createdAt: 1, _id: 1 },
    index: { clusterId: 1, status: 1, priority: -1, createdAt: 1, _id: 1 },
    ferretPushdown: true,
  },
  {
    name: "sweep by status (listByStatus)",
    filter: { status: "RUNNING" },
    sort: { createdAt: 1 },
    index: { status: 1, createdAt: 1 },
    ferretPushdown: true,
  },
  {
    // `status` is pushed down; FerretDB v1 filters `$exists` itself among the running jobs.
    name: "running jobs with a stop requested (launcher sweep)",
    filter: { status: "RUNNING", stopRequest: { $exists: true } },
    sort: { createdAt: 1, _id: 1 },
    index: { status: 1, createdAt: 1 },
    ferretPushdown: true,
  },
  {
    name: "cost roll-up (listRunSince)",
    filter: { startedAt: { $exists: true, $lt: new Date() } },
    index: { startedAt: 1, endedAt: 1 },
    ferretPushdown: false,
  },
  {
    name: "pending SSH keys",
    filter: { sshKeysPending: true },
    sort: { updatedAt: 1 },
    index: { sshKeysPending: 1, updatedAt: 1 },
    ferretPushdown: true,
  },
];

type Plan = Record<string, unknown>;
function stages(p: unknown, out: Plan[] = []): Plan[] {
  if (!p || typeof p !== "object") return out;
  const plan = p as Plan;
  if (typeof plan.stage === "string") out.push(plan);
  for (const k of ["inputStage", "queryPlan"]) stages(plan[k], out);
  for (const k of ["inputStages"]) if (Array.isArray(plan[k])) for (const s of plan[k] as unknown[]) stages(s, out);
  return out;
}

/** Every node of a PostgreSQL EXPLAIN plan (FerretDB's explain returns it as queryPlanner.Plan). */
function pgNodes(p: Plan, out: Plan[] = []): Plan[] {
  out.push(p);
  for (const child of (p.Plans as Plan[] | undefined) ?? []) pgNodes(child, out);
  return out;
}

describe("jobs indexes", () => {
  it("exist as declared in models.ts", async () => {
    const keys = (await Job.collection.indexes()).map((i) => JSON.stringify(i.key));
    for (const q of QUERIES) expect(keys, q.name).toContain(JSON.stringify(q.index));
  });

  for (const q of QUERIES) {
    it(`explain: ${q.name}`, async () => {
      let cur = Job.find(q.filter);
      if (q.sort) cur = cur.sort(q.sort);
      const ex = (await cur.limit(50).explain()) as unknown as Plan;
      const plan = Array.isArray(ex) ? (ex[0] as Plan) : ex;
      if ("filterPushdown" in plan) {
        // FerretDB: the leading equality fields are evaluated by PostgreSQL, or (where FerretDB v1
        // cannot push the operator) every document comes back to FerretDB to filter.
        expect(plan.filterPushdown, JSON.stringify(plan)).toBe(q.ferretPushdown);
        expect(plan.sortPushdown).toBe(false);
        const pg = (plan.queryPlanner as { Plan: Plan }).Plan;
        const nodes = pgNodes(pg);
        if (q.ferretPushdown) {
          // The pushed-down equality (`_jsonb -> 'field' @> value`) is answered by the GIN twin
          // that scripts/infra/ferretdb-equality-indexes.sql gives each indexed field.
          const scans = nodes.filter((n) => n["Node Type"] === "Bitmap Index Scan");
          expect(scans.length, JSON.stringify(pg)).toBeGreaterThan(0);
          for (const scan of scans) expect(String(scan["Index Name"])).toMatch(/_ty_eq_[0-9a-f]{8}$/);
          expect(scans.map((n) => String(n["Index Cond"])).join(" ")).toContain(`'${Object.keys(q.filter)[0]}'`);
        } else {
          expect(pg["Node Type"]).toBe("Seq Scan");
        }
      } else {
        const winning = (plan.queryPlanner as { winningPlan: unknown }).winningPlan;
        const all = stages(winning);
        expect(
          all.map((s) => s.stage),
          JSON.stringify(winning),
        ).not.toContain("COLLSCAN");
        const ix = all.filter((s) => s.stage === "IXSCAN").map((s) => JSON.stringify(s.keyPattern));
        expect(ix, JSON.stringify(winning)).toContain(JSON.stringify(q.index));
      }
    });
  }
});

describe("keyset pages of JobRepo.list", () => {
  it("walk every job of a team exactly once, newest first, ties broken by _id", async () => {
    const repo = new JobRepo(registerModels(conn), NO_LOCKS);
    const seen: string[] = [];
    let afterKey: JobsPageKey | undefined;
    let pages = 0;
    do {
      const page = await repo.list("t1", { limit: 7, ...(afterKey ? { after: afterKey } : {}) });
      pages++;
      seen.push(...page.items.map((j) => j._id.toString()));
      afterKey = page.next;
      if (afterKey) expect(page.items).toHaveLength(7);
    } while (afterKey && pages < 100);
    const all = await Job.find({ team: "t1" }).sort({ createdAt: -1, _id: -1 }).lean();
    expect(all).toHaveLength(80);
    expect(seen).toEqual(all.map((j) => j._id.toString()));
    expect(pages).toBe(Math.ceil(80 / 7));
    // Filters keep to their own jobs.
    const queued = await repo.list("t1", { limit: 200, status: "QUEUED" });
    expect(queued.items.length).toBeGreaterThan(0);
    expect(queued.items.every((j) => j.status === "QUEUED" && j.team === "t1")).toBe(true);
    expect(queued.next).toBeUndefined();
  });
});
