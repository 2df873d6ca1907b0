import type { JobSpec } from "@trainyard/common";
import { type Connection, Types } from "mongoose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DocumentLocks, JobRepo, type JobsPageKey, LIST_PAGE_SIZE, listPagesOf, registerModels } from "./index";
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
  // Stored without list pages, as by an older version: the migration files them by createdAt.
  await new JobRepo(registerModels(conn), NO_LOCKS).fileUnlistedJobs();
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
const QUERIES: Q[] = [
  {
    name: "idempotency key",
    filter: { team: "t1", idempotencyKey: "k4" },
    index: { team: 1, idempotencyKey: 1 },
    ferretPushdown: true,
  },
  {
    // One group of JobRepo.list's walk (list-pages.ts); ?status= and ?project= add equalities.
    name: "GET /v1/jobs (a group of list pages)",
    filter: { team: "t1", listPages: "0:12345" },
    index: { team: 1, listPages: 1 },
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
    name: "project budgets (listInScope)",
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
    name: "the cost sweep (listToPrice)",
    filter: { costPending: true },
    index: { costPending: 1 },
    ferretPushdown: true,
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
          expect(scans.map((n) => String(n["Index Cond"])).join(" "), JSON.stringify(pg)).toContain(
            `'${Object.keys(q.filter)[0]}'`,
          );
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

  it("pages jobs filed by two API replicas exactly once, with filters, in (list page, createdAt, _id) order", async () => {
    const replicas = [new JobRepo(registerModels(conn), NO_LOCKS), new JobRepo(registerModels(conn), NO_LOCKS)];
    const created: string[] = [];
    for (let i = 0; i < 300; i++) {
      const project = i % 3 ? "a" : "b";
      const { job } = await replicas[i % 2]!.create(
        {
          team: "two",
          spec: { name: `s${i}`, project, framework: "pytorch" } as unknown as JobSpec,
          clusterId: cluster,
          clusterName: "c",
        },
        i % 4 ? "PENDING" : "QUEUED",
      );
      created.push(job._id.toString());
    }
    const docs = await Job.find({ team: "two" }).lean();
    // Each replica filled pages of its own, of at most LIST_PAGE_SIZE jobs.
    const perPage = new Map<number, Set<string>>();
    for (const d of docs) perPage.set(d.listPage!, new Set([...(perPage.get(d.listPage!) ?? []), d.name]));
    for (const names of perPage.values()) expect(names.size).toBeLessThanOrEqual(LIST_PAGE_SIZE);
    for (const d of docs) expect(d.listPages).toEqual(listPagesOf(d.listPage!));
    for (const [filter, limit] of [
      [{}, 9],
      [{ status: "QUEUED" as const }, 4],
      [{ project: "b" }, 25],
      [{ status: "PENDING" as const, project: "a" }, 50],
    ] as const) {
      const seen: string[] = [];
      let afterKey: JobsPageKey | undefined;
      for (let pages = 0; pages < 200; pages++) {
        const page = await replicas[pages % 2]!.list("two", { limit, ...filter, ...(afterKey ? { after: afterKey } : {}) });
        seen.push(...page.items.map((j) => j._id.toString()));
        afterKey = page.next;
        if (!afterKey) break;
      }
      const all = await Job.find({ team: "two", ...filter })
        .sort({ listPage: -1, createdAt: -1, _id: -1 })
        .lean();
      expect(all.length, JSON.stringify(filter)).toBeGreaterThan(limit);
      expect(seen, JSON.stringify(filter)).toEqual(all.map((j) => j._id.toString()));
    }
  });

  it("with one API replica the order is creation order", async () => {
    const repo = new JobRepo(registerModels(conn), NO_LOCKS);
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) {
      const { job } = await repo.create({
        team: "one",
        spec: { name: `o${i}`, project: "p", framework: "pytorch" } as unknown as JobSpec,
        clusterId: cluster,
        clusterName: "c",
      });
      ids.push(job._id.toString());
    }
    const page = await repo.list("one", { limit: 100 });
    expect(page.items.map((j) => j._id.toString())).toEqual(ids.reverse());
  });
});

describe("a filter with few matches, far back", () => {
  it("is found by the walk, and the next list of that filter starts at the level it was found at", async () => {
    const repo = new JobRepo(registerModels(conn), NO_LOCKS);
    // 100 recent jobs in pages 9,900–9,999 and the 3 queued ones in pages 0–2.
    const pages = [0, 1, 2, ...Array.from({ length: 100 }, (_, i) => 9_900 + i)];
    await Job.insertMany(
      pages.map((page, i) => ({
        team: "few",
        name: `f${i}`,
        project: "p",
        framework: "pytorch",
        clusterId: cluster,
        clusterName: "c",
        spec: { name: `f${i}` },
        specHash: "h",
        idempotencyKey: `f${i}`,
        status: page < 3 ? "QUEUED" : "SUCCEEDED",
        attempts: [],
        listPage: page,
        listPages: listPagesOf(page),
      })),
    );
    await conn.collection("counters").insertOne({ _id: "job-list-pages:few" as never, next: 10_000 });
    const queued = (await Job.find({ team: "few", status: "QUEUED" }).sort({ listPage: -1 }).lean()).map((j) => j.name);
    let jobQueries = 0;
    conn.set("debug", (collection: string) => {
      if (collection === "jobs") jobQueries++;
    });
    try {
      const walked = await repo.list("few", { limit: 20, status: "QUEUED" });
      expect(walked.items.map((j) => j.name)).toEqual(queued);
      expect(jobQueries).toBeGreaterThan(6);
      jobQueries = 0;
      const again = await repo.list("few", { limit: 20, status: "QUEUED" });
      expect(again.items.map((j) => j.name)).toEqual(queued);
      expect(jobQueries).toBe(1);
    } finally {
      conn.set("debug", false);
    }
  });
});

describe("jobs stored before list pages", () => {
  it("are filed once, below the team's newer jobs, and listed after them", async () => {
    const repo = new JobRepo(registerModels(conn), NO_LOCKS);
    const { job: fresh } = await repo.create({
      team: "legacy",
      spec: { name: "new", project: "p", framework: "pytorch" } as unknown as JobSpec,
      clusterId: cluster,
      clusterName: "c",
    });
    const old = new Types.ObjectId();
    // As an older version stored it: no list page, and newer than `fresh` by the clock.
    await conn.collection("jobs").insertOne({
      _id: old,
      team: "legacy",
      name: "old",
      project: "p",
      status: "SUCCEEDED",
      createdAt: new Date(Date.now() + 5_000),
    });
    expect((await repo.list("legacy", { limit: 5 })).items.map((j) => j.name)).toEqual(["new"]);
    await conn.collection("migrations").deleteOne({ _id: "job-list-pages" as never });
    expect(await repo.fileUnlistedJobs()).toBe(1);
    const filed = await conn.collection("jobs").findOne({ _id: old });
    expect(filed?.listPage).toBeLessThan(0);
    expect((await repo.list("legacy", { limit: 5 })).items.map((j) => j._id.toString())).toEqual([
      fresh._id.toString(),
      old.toString(),
    ]);
    // Recorded as done: the next start does not look again.
    expect(await repo.fileUnlistedJobs()).toBe(0);
  });
});
