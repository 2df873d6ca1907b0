import { randomBytes } from "node:crypto";
import type { JobStatus } from "@trainyard/common";
import { offerQueuedJobs, releaseAndOffer } from "@trainyard/core";
import type { AllocationDoc, AttemptDoc, ClusterDoc, JobDoc } from "@trainyard/db";
import { allocate, type LaunchPlan, PYTORCH_PORTS_PER_NODE, planPytorch } from "@trainyard/frameworks";
import type { LauncherDeps } from "../deps";
import { stopNodes } from "./stop-attempt";

const LAUNCHABLE: JobStatus[] = ["QUEUED", "RETRYING"];

const newAttemptId = (n: number) => `a${n}-${randomBytes(4).toString("hex")}`;

/**
 * Try to start a job: reserve its gang of nodes/GPUs/ports, claim it (QUEUED -> LAUNCHING), upload
 * and start every node. All or nothing: if any node fails, the started ones are stopped and the
 * job fails with a reason that names the node.
 */
export async function launchJob(deps: LauncherDeps, jobId: string): Promise<void> {
  const { repos, logger } = deps;
  const job = await repos.jobs.byId(jobId);
  if (!job || !LAUNCHABLE.includes(job.status)) return;
  const cluster = await repos.clusters.byId(job.clusterId);
  if (!cluster) {
    await repos.jobs.transition(job._id, LAUNCHABLE, "FAILED", {
      set: { failure: { reason: `cluster '${job.clusterName}' no longer exists` }, endedAt: new Date() },
    });
    return;
  }

  const attemptNumber = job.attempts.length + 1;
  const decision = await repos.clusters.reserve(cluster._id, jobId, (c) => {
    const res = allocate(
      {
        jobId,
        attemptId: newAttemptId(attemptNumber),
        nodes: job.spec.resources.nodes,
        gpusPerNode: job.spec.resources.gpusPerNode,
        portsPerNode: PYTORCH_PORTS_PER_NODE,
      },
      { nodes: c.nodes, ports: c.ports },
      c.allocations,
    );
    return res.ok ? { ok: true, allocation: res.allocation } : res;
  });
  if (!decision.ok) {
    await repos.jobs.setWaitingReason(job._id, `waiting for capacity: ${decision.reason}`);
    return;
  }
  const allocation = decision.allocation;
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
  const claimed = await repos.jobs.beginAttempt(job._id, LAUNCHABLE, attempt, job.attempts.length);
  if (!claimed) {
    // Another launcher claimed it, or it was cancelled meanwhile: free the reservation only if nobody uses it.
    const now = await repos.jobs.byId(jobId);
    if (!now || now.currentAttemptId !== allocation.attemptId) {
      if (now && !["LAUNCHING", "RUNNING"].includes(now.status)) await releaseAndOffer(repos, deps.bus, cluster._id, jobId);
    }
    return;
  }
  logger.info({ jobId, attemptId: attempt.id, nodes: attempt.nodes.map((n) => n.name) }, "launching attempt");
  await startAttempt(deps, claimed, cluster, allocation);
}

function buildPlan(job: JobDoc, cluster: ClusterDoc, allocation: Omit<AllocationDoc, "at">, attemptNumber: number): LaunchPlan {
  return planPytorch({
    jobId: job._id.toString(),
    attemptId: allocation.attemptId,
    attemptNumber,
    spec: job.spec,
    clusterEnv: cluster.env ?? {},
    nodes: allocation.nodes.map((a) => {
      const node = cluster.nodes.find((n) => n.name === a.node)!;
      return { name: node.name, host: node.host, workRoot: node.workRoot, gpuIndices: a.gpuIndices, ports: a.ports };
    }),
  });
}

async function startAttempt(
  deps: LauncherDeps,
  job: JobDoc,
  cluster: ClusterDoc,
  allocation: Omit<AllocationDoc, "at">,
): Promise<void> {
  const { repos, gateway, logger, bus } = deps;
  const jobId = job._id.toString();
  const attemptIndex = job.attempts.length - 1;
  const attempt = job.attempts[attemptIndex]!;
  const plan = buildPlan(job, cluster, allocation, attempt.number);

  const started: string[] = [];
  const pgids = new Map<string, number>();
  let failure: { node: string; reason: string } | undefined;

  // Prepare every node first, so a bad node is found before anything runs anywhere.
  const prepared = await Promise.allSettled(plan.nodes.map((p) => gateway.prepare(cluster, p)));
  prepared.forEach((r, i) => {
    if (r.status === "rejected" && !failure) failure = { node: plan.nodes[i]!.node, reason: (r.reason as Error).message };
  });
  if (!failure) {
    const starts = await Promise.allSettled(plan.nodes.map((p) => gateway.start(cluster, p)));
    starts.forEach((r, i) => {
      const node = plan.nodes[i]!.node;
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
    const outcomes = await stopNodes(
      deps,
      cluster,
      job,
      attempt,
      plan.nodes.map((p) => p.node),
    );
    const leftovers = outcomes.filter((o) => o.survivors.length || o.error);
    await repos.jobs.transition(job._id, ["LAUNCHING"], "FAILED", {
      attemptId: attempt.id,
      set: {
        failure: { reason, node: failure.node },
        endedAt: new Date(),
        [`attempts.${attemptIndex}.outcome`]: "FAILED",
        [`attempts.${attemptIndex}.reason`]: reason,
        [`attempts.${attemptIndex}.endedAt`]: new Date(),
      },
    });
    if (leftovers.some((o) => o.survivors.length))
      logger.error({ jobId, leftovers }, "processes survived teardown of a failed launch");
    await releaseAndOffer(repos, bus, cluster._id, jobId);
    await bus.send("alerts", {
      type: "job.failed",
      severity: "critical",
      jobId,
      message: `${job.name}: ${reason}`,
      at: new Date().toISOString(),
    });
    return;
  }

  const now = new Date();
  const running = await repos.jobs.transition(job._id, ["LAUNCHING"], "RUNNING", {
    attemptId: attempt.id,
    set: {
      startedAt: job.startedAt ?? now,
      [`attempts.${attemptIndex}.startedAt`]: now,
      [`attempts.${attemptIndex}.nodes`]: attempt.nodes.map((n) => ({
        ...n,
        state: "running",
        pgid: pgids.get(n.name),
        lastSeenAt: now,
      })),
    },
  });
  if (!running) return;
  logger.info({ jobId, attemptId: attempt.id }, "attempt running");
  await bus.send("cost", { jobId, event: "started", at: now.toISOString() });
  await bus.send("monitor", { jobId, attemptId: attempt.id }, { delay: deps.monitorIntervalMs, jobId: `mon-${attempt.id}-0` });
  // A cancel that arrived while launching is carried out now that the attempt is RUNNING.
  if (running.stopRequest) await bus.send("control", { jobId, attemptId: attempt.id });
}

/** Periodic safety net: re-offer QUEUED jobs whose launch message was lost (Redis is rebuildable). */
export async function sweepQueuedJobs(deps: LauncherDeps): Promise<void> {
  const { repos, bus } = deps;
  const stale = await repos.jobs.listByStatus(["PENDING"]);
  for (const job of stale) {
    if (Date.now() - new Date(job.createdAt).getTime() > 30_000) await repos.jobs.transition(job._id, ["PENDING"], "QUEUED");
  }
  const queued = await repos.jobs.listByStatus(["QUEUED"]);
  const clusters = new Set(queued.map((j) => j.clusterId.toString()));
  for (const id of clusters) {
    const first = queued.find((j) => j.clusterId.toString() === id)!;
    await offerQueuedJobs(repos, bus, first.clusterId);
  }
}
