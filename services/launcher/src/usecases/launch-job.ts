import { randomBytes } from "node:crypto";
import { ACTIVE_STATUSES, WAITING_STATUSES } from "@trainyard/common";
import {
  finishAttempt,
  hasQuota,
  leaseFrom,
  NodeProvisionError,
  planPreemption,
  preemptJob,
  provisionInterNodeSsh,
  quotaBlock,
  requestSchedulingPass,
  restoreCheckpoint,
  revokeInterNodeSsh,
  stopAttemptNodes,
  teamUsage,
} from "@trainyard/core";
import type { AllocationDoc, AttemptDoc, CheckpointDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { allocate, type LaunchPlan, planJob, portsPerNode } from "@trainyard/frameworks";
import { Types } from "mongoose";
import type { LauncherDeps } from "../deps";

/** Jobs a scheduling pass may start: waiting ones. */
const LAUNCHABLE = WAITING_STATUSES;

const newAttemptId = (n: number) => `a${n}-${randomBytes(4).toString("hex")}`;

/**
 * A `launch` message (a retry whose backoff is over, or one queued before the scheduler existed):
 * the job may now be startable, so its cluster gets a scheduling pass. Jobs start only in passes.
 */
export async function launchJob(deps: LauncherDeps, jobId: string): Promise<void> {
  const job = await deps.repos.jobs.byId(jobId);
  if (!job || !LAUNCHABLE.includes(job.status)) return;
  await requestSchedulingPass(deps.bus, job.clusterId);
}

/** What one job's turn in a pass came to. */
type Admission =
  | {
      kind: "admitted";
      claimed: JobDoc;
      allocation: Omit<AllocationDoc, "at">;
      attempt: AttemptDoc;
      checkpoints: CheckpointDoc[];
    }
  /** Does not fit the cluster's free capacity now: holds back every job behind it (strict order). */
  | { kind: "capacity"; reason: string }
  /** Its team's quota holds it; jobs of other teams behind it may go on. */
  | { kind: "quota" }
  /** Not startable (gone, failed, claimed by another replica, retry not yet due). */
  | { kind: "skip" };

const RETRY_DUE_SLACK_MS = 250;

/**
 * While this launcher works on an attempt it renews its lease; if it dies, the lease runs out and
 * another replica's reconciler takes the launch over (core reconcile.ts). Returns the stop.
 */
function keepLeased(deps: LauncherDeps, jobId: Types.ObjectId, attemptId: string): () => void {
  const renew = setInterval(
    () => {
      deps.repos.jobs
        .renewLaunchLease(jobId, attemptId, leaseFrom(deps.lease))
        .catch((err) =>
          deps.logger.warn({ jobId: jobId.toString(), err: (err as Error).message }, "could not renew the launch lease"),
        );
    },
    Math.max(100, Math.floor(deps.lease.ms / 3)),
  );
  return () => clearInterval(renew);
}

/**
 * One scheduling pass over a cluster: walk its QUEUED jobs and due retries in queue order
 * (priority descending, then submit time) and admit each that fits, until the first that does not
 * fit the free capacity: that job is the head and waits, and so does every job behind it (no
 * backfill: jobs carry no runtime limit, so nothing can prove a smaller job would not delay the
 * head). Jobs held by their team's quota are skipped, not blocking. Admission is the same
 * conditional reserve-and-claim as always, so passes racing on several replicas admit each job once.
 * Admitted attempts are then started concurrently. Returns the ids admitted, in order.
 */
export async function schedulingPass(deps: LauncherDeps, clusterId: string): Promise<string[]> {
  const { repos, logger } = deps;
  const cluster = await repos.clusters.byId(clusterId);
  const queue = repos.jobs.waitingInQueueOrder(new Types.ObjectId(clusterId));
  if (!cluster) {
    for await (const job of queue) {
      await repos.jobs.finish(job, LAUNCHABLE, "FAILED", {
        at: new Date(),
        failure: { reason: `cluster '${job.clusterName}' no longer exists` },
      });
    }
    return [];
  }
  // Each admitted attempt's lease is renewed from its claim on: admitting a long queue takes a
  // while, and a lease left to run out meanwhile would have the sweep take the launch over.
  const admitted: Array<Extract<Admission, { kind: "admitted" }> & { leased: () => void }> = [];
  try {
    let current = cluster;
    for await (const job of queue) {
      // A retry waits for its backoff; its delayed launch message asks for a pass when it is due.
      if (job.status === "RETRYING" && job.retryAt && new Date(job.retryAt).getTime() > Date.now() + RETRY_DUE_SLACK_MS) continue;
      const turn = await admit(deps, job, current);
      if (turn.kind === "admitted") {
        admitted.push({ ...turn, leased: keepLeased(deps, turn.claimed._id, turn.attempt.id) });
        current = (await repos.clusters.byId(clusterId)) ?? current;
      } else if (turn.kind === "capacity") {
        // Only the head may preempt (never a job that would backfill behind it).
        const preempting = await preemptForHead(deps, job, current);
        const reason = `waiting for capacity: ${turn.reason}${preempting}`;
        if (job.waitingReason !== reason) await repos.jobs.setWaitingReason(job._id, reason);
        break;
      }
    }
    await Promise.all(
      admitted.map(async ({ claimed, allocation, attempt, checkpoints, leased }) => {
        const jobId = claimed._id.toString();
        try {
          const resumeFrom = await resumePoint(deps, claimed, current, attempt.nodes[0]!.name, checkpoints);
          logger.info({ jobId, attemptId: attempt.id, nodes: attempt.nodes.map((n) => n.name), resumeFrom }, "launching attempt");
          await startAttempt(deps, claimed, current, allocation, resumeFrom);
        } catch (err) {
          logger.error({ jobId, attemptId: attempt.id, err: (err as Error).message }, "starting an admitted attempt failed");
        } finally {
          leased();
        }
      }),
    );
  } finally {
    // A pass cut short leaves no lease renewed for an attempt it will not start: the sweep takes those over.
    for (const a of admitted) a.leased();
  }
  return admitted.map((a) => a.claimed._id.toString());
}

/**
 * The head of the queue does not fit: preempt running preemptible jobs of lower priority whose
 * release lets it fit (see planPreemption), or wait for those already leaving. Returns what to add
 * to the head's waiting reason.
 */
async function preemptForHead(deps: LauncherDeps, head: JobDoc, cluster: ClusterDoc): Promise<string> {
  const running = await deps.repos.jobs.listByCluster(cluster._id, ["RUNNING"]);
  if (!running.some((j) => j.spec.preemptible)) return "";
  const plan = planPreemption(head, gangRequest(head), cluster, running);
  if (plan.kind === "none") return "";
  const names = (jobs: JobDoc[]) => jobs.map((j) => `'${j.name}'`).join(", ");
  if (plan.kind === "wait") return `; waiting for ${names(plan.pending)} to stop`;
  for (const victim of plan.victims) await preemptJob(deps, victim, head);
  return `; preempting ${names(plan.victims)} (lower priority, preemptible)`;
}

/** What a job's next attempt asks of the cluster. */
function gangRequest(job: JobDoc): GangRequest {
  return {
    jobId: job._id.toString(),
    attemptId: newAttemptId(job.attempts.length + 1),
    nodes: job.spec.resources.nodes,
    gpusPerNode: job.spec.resources.gpusPerNode,
    gpuType: job.spec.resources.gpuType,
    portsPerNode: portsPerNode(job.spec),
    // After a failure, keep off the node that failed when the cluster has a spare.
    avoidNodes: job.attempts.flatMap((a) => (a.failedNode ? [a.failedNode] : [])),
  };
}

/** One job's turn: quota check and gang reservation + claim (QUEUED/RETRYING -> LAUNCHING). */
async function admit(deps: LauncherDeps, job: JobDoc, cluster: ClusterDoc): Promise<Admission> {
  const { repos } = deps;
  const jobId = job._id.toString();
  const request = gangRequest(job);
  // With a team quota, counting the team's running jobs and claiming this one is one decision.
  const quota = await repos.teams.quotaOf(job.team);
  if (!hasQuota(quota)) return reserveAndClaim(deps, job, cluster, request);
  return repos.jobs.withTeamAdmission(job.team, async (): Promise<Admission> => {
    const block = quotaBlock(quota, await teamUsage(repos, job.team, jobId), request.nodes * request.gpusPerNode);
    if (!block) return reserveAndClaim(deps, job, cluster, request);
    if (job.waitingReason !== block) await repos.jobs.setWaitingReason(job._id, block);
    return { kind: "quota" };
  });
}

type GangRequest = Parameters<typeof allocate>[0];

/**
 * Reserve the gang on the cluster and claim the job for a new attempt (QUEUED/RETRYING ->
 * LAUNCHING). `capacity` when it has to wait for free capacity, `skip` when it failed or another
 * launcher got it.
 */
async function reserveAndClaim(deps: LauncherDeps, job: JobDoc, cluster: ClusterDoc, request: GangRequest): Promise<Admission> {
  const { repos } = deps;
  const jobId = job._id.toString();
  const attemptNumber = job.attempts.length + 1;
  const decision = await repos.clusters.reserve(cluster._id, jobId, (c) => {
    const res = allocate(request, { nodes: c.nodes, ports: c.ports }, c.allocations);
    return res.ok ? { ok: true, allocation: res.allocation } : res;
  });
  if (!decision.ok) {
    // A retry that could not fit even on an otherwise empty cluster, because its own earlier
    // attempt still holds an unreachable node, has no spare: fail it clearly rather than wait.
    const ownHeld = cluster.allocations.filter((a) => a.held && a.jobId === jobId);
    if (
      job.status === "RETRYING" &&
      ownHeld.length &&
      !allocate(request, { nodes: cluster.nodes, ports: cluster.ports }, ownHeld).ok
    ) {
      const lost = [...new Set(ownHeld.flatMap((a) => a.nodes.map((n) => n.node)))].join(", ");
      const reason = `no spare node to recover on: ${lost} cannot be reached and the cluster has no other node with enough free GPUs`;
      await finishAttempt(deps, job, {
        status: "FAILED",
        from: ["RETRYING"],
        at: new Date(),
        failure: { ...job.failure, reason: `${job.failure?.reason ?? "attempt failed"}; ${reason}` },
      });
      return { kind: "skip" };
    }
    return { kind: "capacity", reason: decision.reason };
  }
  const checkpoints = attemptNumber > 1 ? await repos.checkpoints.listComplete(job._id) : [];
  const allocation = headOnCheckpointNode(decision.allocation, checkpoints[0]?.node);
  // Replicas racing on the same job share one reservation, so its attempt id is the attempt's id.
  const attempt: AttemptDoc = {
    id: allocation.attemptId,
    number: attemptNumber,
    masterAddr: cluster.nodes.find((n) => n.name === allocation.nodes[0]?.node)?.host ?? "",
    createdAt: new Date(),
    nodes: allocation.nodes.map((a, rank) => ({
      name: a.node,
      host: cluster.nodes.find((n) => n.name === a.node)!.host,
      nodeRank: rank,
      gpuIndices: a.gpuIndices,
      ports: a.ports,
      state: "pending",
      missedChecks: 0,
    })),
  };
  const claimed = await repos.jobs.markLaunching(job._id, LAUNCHABLE, attempt, job.attempts.length, leaseFrom(deps.lease));
  if (!claimed) {
    // Another launcher claimed it, or it was cancelled meanwhile: free the reservation only if nobody uses it.
    const now = await repos.jobs.byId(jobId);
    if (!now || now.currentAttemptId !== allocation.attemptId) {
      if (now && !ACTIVE_STATUSES.includes(now.status)) {
        await repos.clusters.release(cluster._id, jobId);
        await requestSchedulingPass(deps.bus, cluster._id);
      }
    }
    return { kind: "skip" };
  }
  return { kind: "admitted", claimed, allocation, attempt, checkpoints };
}

/**
 * Where the new attempt resumes: the latest complete checkpoint if the new head node holds it,
 * else the newest one with an object-store copy, unpacked onto the head node first; else nothing.
 */
async function resumePoint(
  deps: LauncherDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  headNode: string,
  newestFirst: CheckpointDoc[],
): Promise<string> {
  const latest = newestFirst[0];
  if (!latest) return "";
  if (latest.node === headNode) return latest.path;
  const jobId = job._id.toString();
  const stored = newestFirst.find((c) => c.storedUri);
  if (stored) {
    try {
      const path = await restoreCheckpoint(deps, job, cluster, stored, headNode);
      deps.logger.info({ jobId, from: stored.storedUri, node: headNode, path }, "checkpoint restored from object store");
      return path;
    } catch (err) {
      deps.logger.warn({ jobId, from: stored.storedUri, err: (err as Error).message }, "checkpoint restore failed");
    }
  }
  deps.logger.warn(
    { jobId, checkpoint: latest.uri },
    "no checkpoint reachable by this attempt's head node; starting from scratch",
  );
  return "";
}

/** Make the node that holds the checkpoint rank 0 (the node that reads TRAINYARD_RESUME_FROM). */
function headOnCheckpointNode<A extends { nodes: Array<{ node: string }> }>(allocation: A, node: string | undefined): A {
  const i = node ? allocation.nodes.findIndex((n) => n.node === node) : -1;
  if (i <= 0) return allocation;
  const nodes = [...allocation.nodes];
  const [head] = nodes.splice(i, 1);
  return { ...allocation, nodes: [head!, ...nodes] };
}

function buildPlan(
  job: JobDoc,
  cluster: ClusterDoc,
  allocation: Omit<AllocationDoc, "at">,
  attemptNumber: number,
  resumeFrom: string,
): LaunchPlan {
  return planJob({
    resumeFrom,
    ...(job.spec.checkpoints?.dir ? { checkpointDir: job.spec.checkpoints.dir } : {}),
    jobId: job._id.toString(),
    attemptId: allocation.attemptId,
    attemptNumber,
    spec: job.spec,
    clusterEnv: cluster.env ?? {},
    clusterNccl: cluster.nccl,
    nodes: allocation.nodes.map((a) => {
      const node = cluster.nodes.find((n) => n.name === a.node)!;
      return {
        name: node.name,
        host: node.host,
        port: node.port,
        user: node.user,
        workRoot: node.workRoot,
        gpuIndices: a.gpuIndices,
        ports: a.ports,
        nccl: node.nccl,
      };
    }),
  });
}

async function startAttempt(
  deps: LauncherDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  allocation: Omit<AllocationDoc, "at">,
  resumeFrom: string,
): Promise<void> {
  const { repos, gateway, logger, bus } = deps;
  const jobId = job._id.toString();
  const attemptIndex = job.attempts.length - 1;
  const attempt = job.attempts[attemptIndex]!;
  const plan = buildPlan(job, cluster, allocation, attempt.number, resumeFrom);

  const started: string[] = [];
  const pgids = new Map<string, number>();
  let failure: { node: string; reason: string } | undefined;

  // Prepare every node first, so a bad node is found before anything runs anywhere.
  const prepared = await Promise.allSettled(plan.nodes.map((p) => gateway.prepare(cluster, p)));
  prepared.forEach((r, i) => {
    if (r.status === "rejected" && !failure) failure = { node: plan.nodes[i]!.node, reason: (r.reason as Error).message };
  });
  // MPI/Horovod: the attempt's own inter-node SSH key, authorised on every node before anything starts.
  if (!failure && plan.interNodeSsh) {
    try {
      // Recorded first: whatever happens next, every node that may get the key gets a revocation.
      await repos.jobs.setSshKeyNodes(
        job._id,
        attemptIndex,
        plan.nodes.map((n) => n.node),
        true,
      );
      await provisionInterNodeSsh(gateway, cluster, plan, attempt.id);
    } catch (err) {
      failure = { node: err instanceof NodeProvisionError ? err.node : plan.nodes[0]!.node, reason: (err as Error).message };
    }
  }
  // Only nodes that run a launcher start one; the head's horovodrun/mpirun starts the others' ranks.
  const launching = plan.nodes.filter((p) => p.launches);
  if (!failure) {
    const starts = await Promise.allSettled(launching.map((p) => gateway.start(cluster, p)));
    starts.forEach((r, i) => {
      const node = launching[i]!.node;
      if (r.status === "fulfilled") {
        started.push(node);
        pgids.set(node, r.value);
      } else if (!failure) failure = { node, reason: (r.reason as Error).message };
    });
  }

  if (failure) {
    const reason = `node ${failure.node} failed to start: ${failure.reason}`;
    logger.warn(
      { jobId, attemptId: attempt.id, node: failure.node, err: failure.reason },
      "launch failed; stopping started nodes",
    );
    // Stop on every node we may have touched (a failed start may still have left a wrapper running).
    const outcomes = await stopAttemptNodes(
      deps,
      cluster,
      job,
      attempt,
      plan.nodes.map((p) => p.node),
    );
    const leftovers = outcomes.filter((o) => o.survivors.length || o.error);
    await revokeInterNodeSsh(deps, cluster, job, attempt);
    if (leftovers.some((o) => o.survivors.length))
      logger.error({ jobId, leftovers }, "processes survived teardown of a failed launch");
    await finishAttempt(deps, job, {
      status: "FAILED",
      from: ["LAUNCHING"],
      at: new Date(),
      attempt: { attemptId: attempt.id, number: attempt.number, outcome: "FAILED", reason },
      failure: { reason, node: failure.node },
      alert: { type: "job.failed", severity: "critical", message: `${job.name}: ${reason}` },
    });
    return;
  }

  const now = new Date();
  const running = await repos.jobs.markRunning(
    job,
    attempt.id,
    now,
    attempt.nodes.map((n) => ({ ...n, state: "running", pgid: pgids.get(n.name), lastSeenAt: now })),
    deps.lease.owner,
  );
  if (!running) {
    // The launch is no longer ours (taken over after our lease ran out, or the job ended): what
    // this launcher started must not run beside the next gang.
    logger.warn({ jobId, attemptId: attempt.id }, "launch taken over or ended meanwhile; stopping what this launcher started");
    await stopAttemptNodes(
      deps,
      cluster,
      job,
      attempt,
      plan.nodes.map((p) => p.node),
    );
    await revokeInterNodeSsh(deps, cluster, job, attempt);
    return;
  }
  logger.info({ jobId, attemptId: attempt.id }, "attempt running");
  await bus.send("cost", { jobId, event: "started", at: now.toISOString() });
  // At once: the monitor makes sure the cluster's next check (one interval from now) is scheduled.
  await bus.send("monitor", { jobId, attemptId: attempt.id }, { jobId: `started-${attempt.id}` });
  // A cancel that arrived while launching is carried out now that the attempt is RUNNING.
  if (running.stopRequest) await bus.send("control", { jobId, attemptId: attempt.id });
}
