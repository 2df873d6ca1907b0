import { createHash } from "node:crypto";
import {
  ACTIVE_STATUSES,
  type Attempt,
  conflict,
  type JobSpec,
  type JobStatus,
  type JobView,
  notFound,
  type TerminalStatus,
  TRANSITIONS,
  WAITING_STATUSES,
} from "@trainyard/common";
import { Types, type UpdateQuery } from "mongoose";
import { isDuplicateKeyError, retryWriteConflicts } from "./connection";
import { GroupInsert } from "./group-insert";
import { jobCostView } from "./job-costs";
import { ListPageCounter, listPageCounterId, listPageCounters } from "./list-page-counter";
import { LIST_PAGE_SIZE, listPagesOf, walkNewestFirst } from "./list-pages";
import type { DocumentLocks } from "./locks";
import { oncePerDatabase } from "./migrations";
import type { AttemptDoc, AttemptNodeDoc, JobDoc, Models, PreemptRequestDoc, StopRequestDoc } from "./models";

export interface NewJob {
  team: string;
  spec: JobSpec;
  clusterId: Types.ObjectId;
  clusterName: string;
  idempotencyKey?: string;
}

/** Position after which a keyset page starts: the last job of the previous page (list-pages.ts order). */
export interface JobsPageKey {
  page: number;
  createdAt: Date;
  id: Types.ObjectId;
}

export interface ListJobsQuery {
  status?: JobStatus;
  project?: string;
  limit: number;
  /** Keyset pagination: only jobs after this one (list page, createdAt, _id, all descending). */
  after?: JobsPageKey;
}

/** The first `limit` of `items` (in the list's order), and the key of the last when more follow. */
function keysetPage(items: JobDoc[], limit: number): { items: JobDoc[]; next?: JobsPageKey } {
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return items.length > limit && last
    ? { items: page, next: { page: last.listPage ?? 0, createdAt: last.createdAt, id: last._id } }
    : { items: page };
}

/** Who is starting a LAUNCHING attempt, and until when that claim holds unless renewed. */
export interface LaunchLease {
  owner: string;
  until: Date;
}

/** Oldest first, then by id: the order of every status sweep. */
const byAge = (a: JobDoc, b: JobDoc): number =>
  new Date(a.createdAt).getTime() - new Date(b.createdAt).getTime() || a._id.toString().localeCompare(b._id.toString());

/** Queue order: priority descending, then age, then id (core's compareQueued, on stored jobs). */
const inQueueOrder = (a: JobDoc, b: JobDoc): number => (b.priority ?? 0) - (a.priority ?? 0) || byAge(a, b);

/** Why a job failed (or stopped), as shown on the job. */
export type JobFailure = NonNullable<JobDoc["failure"]>;

/** How an attempt ended, recorded on the attempt itself. */
export interface AttemptEnd {
  attemptId: string;
  /** The attempt's own outcome: a retried attempt FAILED although its job goes on; a preempted one PREEMPTED. */
  outcome: TerminalStatus | "PREEMPTED";
  reason?: string;
  /** The nodes' final states. */
  nodes?: AttemptNodeDoc[];
  /** Node blamed for the failure, avoided by the next attempt when the cluster has a spare. */
  failedNode?: string;
}

/** Stable hash of a spec, so a reused Idempotency-Key with a different body is detected. */
export function specHash(spec: JobSpec): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash("sha256")
    .update(JSON.stringify(canonical(spec)))
    .digest("hex");
}

function assertTransition(from: readonly JobStatus[], to: JobStatus): void {
  for (const f of from) if (!TRANSITIONS[f].includes(to)) throw new Error(`illegal job transition ${f} -> ${to}`);
}

/**
 * Jobs and their attempts. Every status change is one conditional single-document update on
 * {_id, status, currentAttemptId}: of two replicas racing, exactly one gets the document back.
 */
export class JobRepo {
  /** New jobs go in groups: concurrent submits share one insert (group-insert.ts). */
  private readonly inserts: GroupInsert<JobDoc>;
  /** The list page each new job is filed in (list-pages.ts). */
  private readonly listPages: ListPageCounter;

  constructor(
    private readonly m: Models,
    private readonly locks: DocumentLocks,
  ) {
    this.inserts = new GroupInsert(m.Job);
    this.listPages = new ListPageCounter(m.Job.db);
  }

  private locked<T>(id: Types.ObjectId | string, fn: () => Promise<T>): Promise<T> {
    // Every locked write is one conditional single-document update: retrying it after a write
    // conflict (the backend aborted it) cannot apply it twice.
    return this.locks.withLock(`job:${id.toString()}`, () => retryWriteConflicts(fn));
  }

  /**
   * Insert a job (PENDING, or straight into its cluster's queue as QUEUED), or return the one
   * already created with the same Idempotency-Key.
   */
  async create(job: NewJob, initial: "PENDING" | "QUEUED" = "PENDING"): Promise<{ job: JobDoc; created: boolean }> {
    const hash = specHash(job.spec);
    const key = job.idempotencyKey ?? `auto-${new Types.ObjectId().toString()}`;
    const listPage = await this.listPages.pageFor(job.team);
    try {
      // Retried after a write conflict: the unique (team, idempotencyKey) index keeps it single.
      const doc = await retryWriteConflicts(() =>
        this.inserts.insert({
          team: job.team,
          name: job.spec.name,
          project: job.spec.project,
          framework: job.spec.framework,
          clusterId: job.clusterId,
          clusterName: job.clusterName,
          priority: job.spec.priority ?? 0,
          spec: { ...job.spec, files: {} },
          files: Object.entries(job.spec.files ?? {}).map(([path, content]) => ({ path, content })),
          fileNames: Object.keys(job.spec.files ?? {}),
          specHash: hash,
          idempotencyKey: key,
          status: initial,
          attempts: [],
          listPage,
          listPages: listPagesOf(listPage),
        }),
      );
      return { job: hydrateJob(doc.toObject())!, created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const existing = hydrateJob(await this.m.Job.findOne({ team: job.team, idempotencyKey: key }).lean<JobDoc>());
      if (!existing) throw err;
      if (existing.specHash !== hash) throw conflict("this Idempotency-Key was already used with a different job spec");
      return { job: existing, created: false };
    }
  }

  async byId(id: string | Types.ObjectId): Promise<JobDoc | null> {
    if (!isObjectId(id)) return null;
    return hydrateJob(await this.m.Job.findById(id).lean<JobDoc>());
  }

  async getForTeam(team: string, id: string): Promise<JobDoc> {
    const doc = isObjectId(id) ? hydrateJob(await this.m.Job.findOne({ _id: id, team }).lean<JobDoc>()) : null;
    if (!doc) throw notFound(`job '${id}'`);
    return doc;
  }

  /**
   * One page of a team's jobs, newest first, by keyset (never skip, never a count): the page after
   * `q.after` in the list's order (list page, createdAt, _id, all descending; see list-pages.ts).
   * `next` is the key of the page's last job when more follow. Each query is an equality on
   * {team[, status][, project], listPages}: no backend reads more than a group of pages.
   * Index {team, listPages} (see models.ts).
   */
  async list(team: string, q: ListJobsQuery): Promise<{ items: JobDoc[]; next?: JobsPageKey }> {
    const filter: Record<string, unknown> = { team };
    if (q.status) filter.status = q.status;
    if (q.project) filter.project = q.project;
    const hintKey = JSON.stringify([team, q.status ?? null, q.project ?? null]);
    const hint = this.listHints.get(hintKey);
    const counter = await listPageCounters(this.m.Job.db).findOne({ _id: listPageCounterId(team) });
    const walk = await walkNewestFirst<JobDoc>({
      fetch: (group, cap) => {
        const query = this.m.Job.find({ ...filter, listPages: group }, { files: 0 });
        return (cap ? query.limit(cap) : query).lean<JobDoc[]>();
      },
      want: q.limit + 1,
      oldest: counter?.low ?? 0,
      end: counter?.next ?? 0,
      ...(q.after ? { after: q.after } : {}),
      ...(hint !== undefined ? { startLevel: hint } : {}),
    });
    this.rememberListHint(hintKey, walk.level);
    return keysetPage(walk.items, q.limit);
  }

  /**
   * File jobs stored before list pages existed (lists cannot see them until then), once per
   * database (oncePerDatabase), under the job-list-pages lock: each team's older jobs go
   * in pages below its lowest, newest first, LIST_PAGE_SIZE a page. One pass over the jobs
   * without pages (FerretDB v1 decodes every job to find them: ~3 s per 10,000).
   */
  async fileUnlistedJobs(): Promise<number> {
    // Under a lock: two API replicas starting at once would file the same jobs twice.
    return this.locks.withLock("migration:job-list-pages", () =>
      oncePerDatabase(this.m.Job.db, "job-list-pages", async () => {
        const unlisted = await this.m.Job.find({ listPages: { $exists: false } }, { _id: 1, team: 1, createdAt: 1 }).lean<
          Array<{ _id: Types.ObjectId; team: string; createdAt?: Date }>
        >();
        const byTeam = new Map<string, typeof unlisted>();
        for (const d of unlisted) {
          const jobs = byTeam.get(d.team);
          if (jobs) jobs.push(d);
          else byTeam.set(d.team, [d]);
        }
        for (const [team, jobs] of byTeam) {
          const at = (d: (typeof jobs)[number]) => (d.createdAt ?? d._id.getTimestamp()).getTime();
          jobs.sort((a, b) => at(b) - at(a) || (b._id.toString() < a._id.toString() ? -1 : 1));
          const counters = listPageCounters(this.m.Job.db);
          const base = (await counters.findOne({ _id: listPageCounterId(team) }))?.low ?? 0;
          const pageOf = (rank: number) => base - 1 - Math.floor(rank / LIST_PAGE_SIZE);
          for (let i = 0; i < jobs.length; i += 500) {
            await this.m.Job.bulkWrite(
              jobs.slice(i, i + 500).map((d, k) => ({
                updateOne: {
                  filter: { _id: d._id },
                  update: { $set: { listPage: pageOf(i + k), listPages: listPagesOf(pageOf(i + k)) } },
                },
              })),
              { ordered: false, timestamps: false },
            );
          }
          await counters.updateOne(
            { _id: listPageCounterId(team) },
            { $set: { low: pageOf(jobs.length - 1) } },
            { upsert: true },
          );
        }
        return unlisted.length;
      }),
    );
  }

  /**
   * Per filter (team, status, project): the level its last walk ended at, so the next one (a
   * poll, a next page) starts there. Bounded; a lost hint costs a few queries.
   */
  private readonly listHints = new Map<string, number>();

  private rememberListHint(key: string, hint: number): void {
    this.listHints.delete(key);
    this.listHints.set(key, hint);
    // The oldest hint goes first (a Map iterates in insertion order).
    if (this.listHints.size > 10_000) this.listHints.delete(this.listHints.keys().next().value!);
  }

  /**
   * Run `fn` as the only admission decision of the team at this moment: quota checks count the
   * team's running jobs and claim the next one under this lock, so concurrent launchers cannot
   * both admit the last free slot.
   */
  withTeamAdmission<T>(team: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(`team-admission:${team}`, fn);
  }

  /** A team's jobs in the given statuses, oldest first. */
  async listByTeam(team: string, statuses: readonly JobStatus[]): Promise<JobDoc[]> {
    return this.findInStatuses({ team }, statuses);
  }

  /** Jobs of a cluster in the given statuses, oldest first (the scheduler's FIFO order). */
  async listByCluster(clusterId: Types.ObjectId, statuses: readonly JobStatus[]): Promise<JobDoc[]> {
    return this.findInStatuses({ clusterId }, statuses);
  }

  /**
   * Jobs matching `filter` in any of `statuses`, oldest first (at most `limit`). One query per
   * status, each an equality: FerretDB v1 pushes scalar equality down to PostgreSQL but filters
   * `$in` itself after decoding every document the rest of the filter matches (the whole
   * collection for a sweep: 7.4 s against 1.1 s at 10,000 stored jobs, 1,000 of them queued).
   * On MongoDB each is a scan of an index that starts with (…, status).
   */
  private async findInStatuses(
    filter: Record<string, unknown>,
    statuses: readonly JobStatus[],
    limit?: number,
  ): Promise<JobDoc[]> {
    const parts = await Promise.all(
      [...new Set(statuses)].map((status) => {
        const q = this.m.Job.find({ ...filter, status }, { files: 0 }).sort({ createdAt: 1, _id: 1 });
        return (limit ? q.limit(limit) : q).lean<JobDoc[]>();
      }),
    );
    const all = parts.length === 1 ? parts[0]! : parts.flat().sort(byAge);
    return limit ? all.slice(0, limit) : all;
  }

  /** Count of jobs matching `filter` in any of `statuses` (one equality count per status, as above). */
  private async countInStatuses(filter: Record<string, unknown>, statuses: readonly JobStatus[]): Promise<number> {
    const counts = await Promise.all(statuses.map((status) => this.m.Job.countDocuments({ ...filter, status })));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * A cluster's waiting jobs (QUEUED and RETRYING) in queue order (priority descending, then age,
   * then id), read `pageSize` at a time by keyset: a scheduling pass that stops at the head reads
   * one page, not the whole backlog. Index {clusterId, status, priority, createdAt, _id} (models.ts).
   */
  async *waitingInQueueOrder(clusterId: Types.ObjectId, pageSize = 50): AsyncGenerator<JobDoc> {
    let after: JobDoc | undefined;
    for (;;) {
      const keyset = after
        ? {
            $or: [
              { priority: { $lt: after.priority ?? 0 } },
              { priority: after.priority ?? 0, createdAt: { $gt: after.createdAt } },
              { priority: after.priority ?? 0, createdAt: after.createdAt, _id: { $gt: after._id } },
            ],
          }
        : {};
      const parts = await Promise.all(
        WAITING_STATUSES.map((status) =>
          this.m.Job.find({ clusterId, status, ...keyset }, { files: 0 })
            .sort({ priority: -1, createdAt: 1, _id: 1 })
            .limit(pageSize)
            .lean<JobDoc[]>(),
        ),
      );
      const page = parts.flat().sort(inQueueOrder).slice(0, pageSize);
      for (const job of page) yield job;
      if (page.length < pageSize) return;
      after = page[page.length - 1];
    }
  }

  /**
   * Where a waiting job stands in its cluster's queue (priority descending, then age, then id):
   * how many waiting jobs are ahead of it, and how many of those have a higher priority.
   */
  async queuePlace(job: JobDoc): Promise<{ ahead: number; higher: number }> {
    const p = job.priority ?? job.spec.priority ?? 0;
    const waiting: Record<string, unknown> = { clusterId: job.clusterId, _id: { $ne: job._id } };
    // Jobs stored before priorities existed have no field: they count as priority 0.
    const same: Record<string, unknown> = p === 0 ? { priority: { $in: [0, null] } } : { priority: p };
    const [higher, older] = await Promise.all([
      this.countInStatuses({ ...waiting, priority: p < 0 ? { $not: { $lte: p } } : { $gt: p } }, WAITING_STATUSES),
      this.countInStatuses(
        {
          ...waiting,
          ...same,
          $or: [{ createdAt: { $lt: job.createdAt } }, { createdAt: job.createdAt, _id: { $lt: job._id } }],
        },
        WAITING_STATUSES,
      ),
    ]);
    return { ahead: higher + older, higher };
  }

  async listByStatus(statuses: readonly JobStatus[], limit = 1000): Promise<JobDoc[]> {
    return this.findInStatuses({}, statuses, limit);
  }

  /**
   * Running jobs with a stop requested (the launcher's sweep re-sends their control message). Only
   * those, not every running job: `status` narrows in PostgreSQL on FerretDB v1 (`$exists` is then
   * filtered by FerretDB), and a sweep never misses one behind a page of a thousand running jobs.
   */
  async runningWithStopRequest(limit = 1000): Promise<JobDoc[]> {
    return this.m.Job.find({ status: "RUNNING", stopRequest: { $exists: true } }, { files: 0 })
      .sort({ createdAt: 1, _id: 1 })
      .limit(limit)
      .lean<JobDoc[]>();
  }

  /** The clusters that have jobs in any of `statuses` (the reconciler's "which queues to pass"). */
  async clustersWith(statuses: readonly JobStatus[]): Promise<string[]> {
    const ids = await Promise.all(statuses.map((status) => this.m.Job.distinct("clusterId", { status })));
    return [...new Set(ids.flat().map((id) => String(id)))];
  }

  /** Jobs whose current attempt runs (or is being launched) on `node` of the cluster. */
  async activeOnNode(clusterId: Types.ObjectId, node: string): Promise<JobDoc[]> {
    const jobs = await this.findInStatuses({ clusterId, "attempts.nodes.name": node }, ACTIVE_STATUSES);
    return jobs.filter((j) => j.attempts.find((a) => a.id === j.currentAttemptId)?.nodes.some((n) => n.name === node));
  }

  /**
   * The one conditional write behind every status change: from one of `from` to `to`, optionally
   * only while `attemptId` is current. Null when another actor got there first. Private: callers
   * use the lifecycle methods below, which own the document's field paths.
   */
  private async move(
    id: Types.ObjectId,
    from: readonly JobStatus[],
    to: JobStatus,
    opts: { attemptId?: string; leaseOwner?: string; set?: Record<string, unknown>; unset?: string[] } = {},
  ): Promise<JobDoc | null> {
    assertTransition(from, to);
    const filter: Record<string, unknown> = { _id: id, status: { $in: [...from] } };
    if (opts.attemptId !== undefined) filter.currentAttemptId = opts.attemptId;
    if (opts.leaseOwner !== undefined) filter.launchLeaseOwner = opts.leaseOwner;
    const update: UpdateQuery<JobDoc> = { $set: { status: to, ...(opts.set ?? {}) } };
    if (opts.unset?.length) update.$unset = Object.fromEntries(opts.unset.map((k) => [k, 1]));
    return this.locked(id, async () =>
      hydrateJob(await this.m.Job.findOneAndUpdate(filter, update, { returnDocument: "after" }).lean<JobDoc>()),
    );
  }

  /** A submitted job enters its cluster's queue (PENDING -> QUEUED). */
  queue(id: Types.ObjectId): Promise<JobDoc | null> {
    return this.move(id, ["PENDING"], "QUEUED");
  }

  /**
   * Claim a waiting job for a new attempt (QUEUED/RETRYING -> LAUNCHING). `expectedAttempts` is the
   * attempt count the caller saw: of launchers racing, only one appends. Null when another won.
   */
  async markLaunching(
    id: Types.ObjectId,
    from: readonly JobStatus[],
    attempt: AttemptDoc,
    expectedAttempts: number,
    lease?: LaunchLease,
  ): Promise<JobDoc | null> {
    assertTransition(from, "LAUNCHING");
    return this.locked(id, async () =>
      hydrateJob(
        await this.m.Job.findOneAndUpdate(
          { _id: id, status: { $in: [...from] }, attempts: { $size: expectedAttempts } },
          {
            $set: {
              status: "LAUNCHING",
              currentAttemptId: attempt.id,
              ...(lease ? { launchLeaseOwner: lease.owner, launchLeaseUntil: lease.until } : {}),
            },
            $push: { attempts: attempt },
            $unset: { waitingReason: 1 },
          },
          { returnDocument: "after" },
        ).lean<JobDoc>(),
      ),
    );
  }

  /**
   * The launcher starting the attempt is still at it: push its lease on to `lease.until`. False when
   * the attempt is no longer its to launch (it runs, ended, or was taken over): it must give up.
   */
  async renewLaunchLease(id: Types.ObjectId, attemptId: string, lease: LaunchLease): Promise<boolean> {
    const res = await this.locked(id, () =>
      this.m.Job.updateOne(
        { _id: id, status: "LAUNCHING", currentAttemptId: attemptId, launchLeaseOwner: lease.owner },
        { $set: { launchLeaseUntil: lease.until } },
      ),
    );
    return res.matchedCount > 0;
  }

  /**
   * Take over a launch whose lease ran out (its launcher died): the lease passes to the caller only
   * while it is still the expired one the caller saw, so of reconcilers racing exactly one wins,
   * and the old launcher can no longer mark the attempt running.
   */
  takeOverLaunch(job: JobDoc, attemptId: string, lease: LaunchLease): Promise<JobDoc | null> {
    return this.locked(job._id, async () =>
      hydrateJob(
        await this.m.Job.findOneAndUpdate(
          {
            _id: job._id,
            status: "LAUNCHING",
            currentAttemptId: attemptId,
            launchLeaseOwner: job.launchLeaseOwner ?? null,
            launchLeaseUntil: job.launchLeaseUntil ?? null,
          },
          { $set: { launchLeaseOwner: lease.owner, launchLeaseUntil: lease.until } },
          { returnDocument: "after" },
        ).lean<JobDoc>(),
      ),
    );
  }

  /**
   * Every node of the attempt started (LAUNCHING -> RUNNING); the job's own start is its first
   * attempt's. With `leaseOwner`, only while that launcher still holds the launch.
   */
  markRunning(
    job: JobDoc,
    attemptId: string,
    startedAt: Date,
    nodes: AttemptNodeDoc[],
    leaseOwner?: string,
  ): Promise<JobDoc | null> {
    const i = attemptIndexOf(job, attemptId);
    return this.move(job._id, ["LAUNCHING"], "RUNNING", {
      attemptId,
      ...(leaseOwner !== undefined ? { leaseOwner } : {}),
      set: {
        startedAt: job.startedAt ?? startedAt,
        [`attempts.${i}.startedAt`]: startedAt,
        [`attempts.${i}.nodes`]: nodes,
        // The cost sweep prices it until its final cost is written (JobCostRepo.setCost).
        costPending: true,
      },
      unset: ["launchLeaseOwner", "launchLeaseUntil"],
    });
  }

  /**
   * A launch abandoned by its launcher (LAUNCHING -> QUEUED): the attempt ends FAILED with the
   * reason, and the job waits in its cluster's queue at its old place for a fresh attempt.
   */
  relaunch(job: JobDoc, attempt: AttemptEnd, at: Date): Promise<JobDoc | null> {
    return this.move(job._id, ["LAUNCHING"], "QUEUED", {
      attemptId: attempt.attemptId,
      set: attemptEndFields(job, attempt, at),
      unset: ["launchLeaseOwner", "launchLeaseUntil"],
    });
  }

  /**
   * End the job for good (a terminal status). With `attempt`, its current attempt ends with it
   * (only while that attempt is current); without, nothing of it ran (a cancel or budget stop of a
   * waiting job, a failure to schedule). `failure` null clears an earlier attempt's failure.
   */
  finish(
    job: JobDoc,
    from: readonly JobStatus[],
    status: TerminalStatus,
    end: { at: Date; failure?: JobFailure | null; attempt?: AttemptEnd; progress?: JobDoc["progress"] },
  ): Promise<JobDoc | null> {
    return this.move(job._id, from, status, {
      ...(end.attempt ? { attemptId: end.attempt.attemptId } : {}),
      set: {
        endedAt: end.at,
        ...(end.failure ? { failure: end.failure } : {}),
        ...(end.progress ? { progress: end.progress } : {}),
        ...(end.attempt ? attemptEndFields(job, end.attempt, end.at) : {}),
      },
      ...(end.failure === null ? { unset: ["failure"] } : {}),
    });
  }

  /**
   * The running attempt failed and the job will try again (RUNNING -> RETRYING): the attempt ends
   * FAILED, the next launch is due at `retryAt`, and the next attempt starts without a stop request.
   */
  requeue(job: JobDoc, attempt: AttemptEnd, end: { at: Date; retryAt: Date; failure: JobFailure }): Promise<JobDoc | null> {
    return this.move(job._id, ["RUNNING"], "RETRYING", {
      attemptId: attempt.attemptId,
      set: { retryAt: end.retryAt, failure: end.failure, ...attemptEndFields(job, attempt, end.at) },
      unset: ["stopRequest"],
    });
  }

  /**
   * The running attempt was preempted (RUNNING -> QUEUED): it ends PREEMPTED (not a failure), and
   * the job waits in its cluster's queue again, to resume from its latest checkpoint.
   */
  preempted(job: JobDoc, attempt: AttemptEnd, end: { at: Date; waitingReason: string }): Promise<JobDoc | null> {
    return this.move(job._id, ["RUNNING"], "QUEUED", {
      attemptId: attempt.attemptId,
      set: { waitingReason: end.waitingReason, ...attemptEndFields(job, attempt, end.at) },
      unset: ["stopRequest", "preemptRequest", "retryAt"],
    });
  }

  /**
   * Mark a running attempt to be preempted at its next checkpoint. Conditional on the attempt being
   * current, running and not already stopping or marked: of scheduling passes racing on several
   * launchers, one marks it. Returns the job when this call marked it.
   */
  async requestPreemption(victim: JobDoc, req: PreemptRequestDoc): Promise<JobDoc | null> {
    return this.locked(victim._id, async () =>
      hydrateJob(
        await this.m.Job.findOneAndUpdate(
          {
            _id: victim._id,
            status: "RUNNING",
            currentAttemptId: victim.currentAttemptId,
            stopRequest: { $exists: false },
            preemptRequest: { $exists: false },
          },
          { $set: { preemptRequest: req } },
          { returnDocument: "after" },
        ).lean<JobDoc>(),
      ),
    );
  }

  /** Drop a pending preemption (the job it made room for no longer waits). */
  async clearPreemption(id: Types.ObjectId, attemptId: string): Promise<void> {
    await this.locked(id, () =>
      this.m.Job.updateOne({ _id: id, currentAttemptId: attemptId }, { $unset: { preemptRequest: 1 } }),
    );
  }

  /** Record why a queued job waits (visible in GET /v1/jobs/:id). */
  async setWaitingReason(id: Types.ObjectId, reason: string): Promise<void> {
    await this.locked(id, () =>
      this.m.Job.updateOne({ _id: id, status: { $in: [...WAITING_STATUSES] } }, { $set: { waitingReason: reason } }),
    );
  }

  /** Replace the current attempt's node states (and progress) while that attempt is still current. */
  async updateAttempt(
    id: Types.ObjectId,
    attemptId: string,
    attemptIndex: number,
    patch: {
      nodes?: AttemptNodeDoc[];
      startedAt?: Date;
      stalledAt?: Date;
      gpuIdleAlertedAt?: Date;
      progress?: JobDoc["progress"];
    },
  ): Promise<boolean> {
    const set: Record<string, unknown> = {};
    if (patch.nodes) set[`attempts.${attemptIndex}.nodes`] = patch.nodes;
    if (patch.startedAt) set[`attempts.${attemptIndex}.startedAt`] = patch.startedAt;
    if (patch.stalledAt) set[`attempts.${attemptIndex}.stalledAt`] = patch.stalledAt;
    if (patch.gpuIdleAlertedAt) set[`attempts.${attemptIndex}.gpuIdleAlertedAt`] = patch.gpuIdleAlertedAt;
    if (patch.progress) set.progress = patch.progress;
    if (!Object.keys(set).length) return true;
    const res = await this.locked(id, () => this.m.Job.updateOne({ _id: id, currentAttemptId: attemptId }, { $set: set }));
    return res.matchedCount > 0;
  }

  /**
   * Ask for an active attempt to be stopped; the first request wins (a cancel racing a failure keeps
   * whichever came first). Returns the job when this call set the request.
   */
  async requestStop(id: Types.ObjectId | string, attemptId: string, stop: StopRequestDoc): Promise<JobDoc | null> {
    return this.locked(id, async () =>
      hydrateJob(
        await this.m.Job.findOneAndUpdate(
          { _id: id, currentAttemptId: attemptId, status: { $in: [...ACTIVE_STATUSES] }, stopRequest: { $exists: false } },
          { $set: { stopRequest: stop } },
          { returnDocument: "after" },
        ).lean<JobDoc>(),
      ),
    );
  }

  /**
   * Record where an attempt's inter-node SSH key may still be authorised (all its nodes before the
   * key is handed out; the unreachable ones after a revocation), and whether any attempt of the job
   * still has such nodes. Unconditional: revoking twice is harmless.
   */
  async setSshKeyNodes(id: Types.ObjectId, attemptIndex: number, nodes: string[], pending: boolean): Promise<void> {
    await this.locked(id, () =>
      this.m.Job.updateOne({ _id: id }, { $set: { [`attempts.${attemptIndex}.sshKeyNodes`]: nodes, sshKeysPending: pending } }),
    );
  }

  /** Jobs with an attempt whose inter-node SSH key could not be revoked everywhere yet. */
  async withPendingSshKeys(limit = 100): Promise<JobDoc[]> {
    return this.m.Job.find({ sshKeysPending: true }, { files: 0 }).sort({ updatedAt: 1 }).limit(limit).lean<JobDoc[]>();
  }
}

/** Rebuild spec.files from the stored list (file names hold '.', which MongoDB-wire keys may not). */
function hydrateJob(raw: JobDoc | null): JobDoc | null {
  if (!raw) return null;
  const { files, ...rest } = raw;
  return { ...rest, spec: { ...raw.spec, files: Object.fromEntries((files ?? []).map((f) => [f.path, f.content])) } };
}

function isObjectId(id: string | Types.ObjectId): boolean {
  return typeof id !== "string" || /^[0-9a-f]{24}$/.test(id);
}

function attemptIndexOf(job: JobDoc, attemptId: string): number {
  const i = job.attempts.findIndex((a) => a.id === attemptId);
  if (i < 0) throw new Error(`job ${job._id.toString()} has no attempt ${attemptId}`);
  return i;
}

/** The $set fields that record an attempt's end: the one place that writes these paths. */
function attemptEndFields(job: JobDoc, end: AttemptEnd, at: Date): Record<string, unknown> {
  const i = attemptIndexOf(job, end.attemptId);
  return {
    [`attempts.${i}.outcome`]: end.outcome,
    [`attempts.${i}.endedAt`]: at,
    ...(end.reason !== undefined ? { [`attempts.${i}.reason`]: end.reason } : {}),
    ...(end.nodes ? { [`attempts.${i}.nodes`]: end.nodes } : {}),
    ...(end.failedNode ? { [`attempts.${i}.failedNode`]: end.failedNode } : {}),
  };
}

export function currentAttempt(job: JobDoc): AttemptDoc | undefined {
  return job.attempts.find((a) => a.id === job.currentAttemptId);
}

const iso = (d?: Date) => (d ? new Date(d).toISOString() : undefined);

function attemptView(a: AttemptDoc): Attempt {
  return {
    id: a.id,
    number: a.number,
    masterAddr: a.masterAddr,
    createdAt: iso(a.createdAt)!,
    ...(a.startedAt ? { startedAt: iso(a.startedAt) } : {}),
    ...(a.endedAt ? { endedAt: iso(a.endedAt) } : {}),
    ...(a.outcome ? { outcome: a.outcome } : {}),
    ...(a.reason ? { reason: a.reason } : {}),
    ...(a.stalledAt ? { stalledAt: iso(a.stalledAt) } : {}),
    ...(a.gpuIdleAlertedAt ? { gpuIdleAlertedAt: iso(a.gpuIdleAlertedAt) } : {}),
    ...(a.failedNode ? { failedNode: a.failedNode } : {}),
    nodes: a.nodes.map((n) => ({
      name: n.name,
      host: n.host,
      nodeRank: n.nodeRank,
      gpuIndices: n.gpuIndices,
      ports: n.ports,
      state: n.state,
      missedChecks: n.missedChecks ?? 0,
      ...(n.exitCode !== undefined && n.exitCode !== null ? { exitCode: n.exitCode } : {}),
      ...(n.pgid ? { pgid: n.pgid } : {}),
      ...(n.lastSeenAt ? { lastSeenAt: iso(n.lastSeenAt) } : {}),
      ...(n.logTail ? { logTail: n.logTail } : {}),
    })),
  };
}

export function jobView(doc: JobDoc): JobView {
  const { files, ...spec } = doc.spec;
  return {
    id: doc._id.toString(),
    team: doc.team,
    name: doc.name,
    project: doc.project,
    framework: doc.framework as JobView["framework"],
    clusterId: doc.clusterId.toString(),
    clusterName: doc.clusterName,
    status: doc.status,
    attempts: doc.attempts.map(attemptView),
    ...(doc.progress
      ? {
          progress: {
            step: doc.progress.step,
            ...(doc.progress.totalSteps !== undefined ? { totalSteps: doc.progress.totalSteps } : {}),
            ...(doc.progress.loss !== undefined ? { loss: doc.progress.loss } : {}),
            ...(doc.progress.ratio !== undefined ? { ratio: doc.progress.ratio } : {}),
            updatedAt: iso(doc.progress.updatedAt)!,
          },
        }
      : {}),
    ...(doc.waitingReason ? { waitingReason: doc.waitingReason } : {}),
    ...(doc.retryAt && doc.status === "RETRYING" ? { retryAt: iso(doc.retryAt) } : {}),
    ...(doc.failure?.reason ? { failure: doc.failure } : {}),
    ...(doc.stopRequest?.kind ? { stopRequest: { ...doc.stopRequest, requestedAt: iso(doc.stopRequest.requestedAt)! } } : {}),
    ...(doc.preemptRequest?.byJobId
      ? {
          preemptRequest: {
            byJobId: doc.preemptRequest.byJobId,
            byJobName: doc.preemptRequest.byJobName,
            requestedAt: iso(doc.preemptRequest.requestedAt)!,
            deadline: iso(doc.preemptRequest.deadline)!,
          },
        }
      : {}),
    ...(doc.cost?.updatedAt ? { cost: jobCostView(doc.cost) } : {}),
    spec: { ...spec, files: doc.fileNames ?? Object.keys(files ?? {}) },
    createdAt: iso(doc.createdAt)!,
    updatedAt: iso(doc.updatedAt)!,
    ...(doc.startedAt ? { startedAt: iso(doc.startedAt) } : {}),
    ...(doc.endedAt ? { endedAt: iso(doc.endedAt) } : {}),
  };
}
