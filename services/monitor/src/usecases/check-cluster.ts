import { scheduleClusterCheck } from "@trainyard/core";
import { type ClusterDoc, currentAttempt, type JobDoc, type NewTelemetry } from "@trainyard/db";
import { attemptDir, type NodeProbeTarget, type ProbeResult } from "@trainyard/frameworks";
import type { MonitorDeps } from "../deps";
import { checkAttempt, type NodeObservation } from "./check-attempt";

/** Attempts whose outcome is applied at once (each is a few database writes). */
const APPLY_CONCURRENCY = 8;

/**
 * One check of every running attempt of a cluster: each node is probed once for all the attempts
 * on it (one SSH round trip and one process scan per node, not per attempt), then each attempt's
 * outcome is applied on its own (checkAttempt) as soon as its own nodes answered: a node that is
 * slow to answer (frozen sshd, black-holed network: up to SSH_COMMAND_TIMEOUT_MS) holds back only
 * the attempts on it. The check re-schedules itself while the cluster runs something; a starting
 * attempt re-arms it (watchAttempt) and the sweep backs both up.
 */
export async function checkCluster(deps: MonitorDeps, clusterId: string): Promise<void> {
  const startedAt = Date.now();
  const cluster = await deps.repos.clusters.byId(clusterId);
  if (!cluster) return;
  // Attempts with a stop request are the launcher's to stop, not to check.
  const running = (await deps.repos.jobs.listByCluster(cluster._id, ["RUNNING"])).filter(
    (j) => currentAttempt(j) && !j.stopRequest,
  );
  // Attempts no longer running here are forgotten by the lag metric (a later one starts afresh).
  deps.checks.keepOnly(clusterId, new Set(running.map((j) => j.currentAttemptId!)));
  if (!running.length) return;

  // Attempts on a node an earlier check of this replica still waits for are that check's to apply.
  // Taken here with no await in between, so two checks of this replica never share a node.
  const inFlight = (node: string) => `${clusterId}/${node}`;
  const jobs = running.filter((j) => !nodesOf(j).some((n) => deps.probesInFlight.has(inFlight(n))));
  const targets = probeTargets(cluster, jobs);
  // Per node, the attempts on it still to apply: the node is released when the last one is.
  const pending = new Map([...targets].map(([node, list]) => [node, list.length]));
  for (const node of targets.keys()) deps.probesInFlight.add(inFlight(node));
  const release = (job: JobDoc) => {
    for (const node of nodesOf(job)) {
      const left = (pending.get(node) ?? 0) - 1;
      pending.set(node, left);
      if (left === 0) deps.probesInFlight.delete(inFlight(node));
    }
  };

  const samples: NewTelemetry[] = [];
  const storeSamples = async () => {
    const batch = samples.splice(0);
    if (!batch.length) return;
    try {
      // The GPU/process samples of many attempts in one insert, not one per attempt.
      await deps.repos.telemetry.add(batch);
    } catch (err) {
      deps.logger.warn(
        { cluster: cluster.name, err: (err as Error).message },
        "telemetry not stored; the next check tries again",
      );
    }
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const answered = new Set<string>();
    const probes = new Map(
      [...targets].map(([node, list]) => [node, probeNode(deps, cluster, node, list).finally(() => answered.add(node))]),
    );
    void Promise.all(probes.values()).then(() => deps.checks.clusterChecked("probe", (Date.now() - startedAt) / 1000));
    const limit = limiter(APPLY_CONCURRENCY);
    const applied = jobs.map(async (job) => {
      try {
        const seen: NodeProbes = new Map();
        for (const node of nodesOf(job)) {
          const probe = probes.get(node);
          if (probe) seen.set(node, await probe);
        }
        const now = new Date();
        await limit(() => checkAttempt(deps, cluster, job, observationsOf(cluster, job, seen), now, samples));
        deps.checks.checked(clusterId, job.currentAttemptId!, Date.now());
      } catch (err) {
        // One attempt's trouble (a write that timed out) never costs the others their check.
        deps.logger.warn({ jobId: job._id.toString(), err: (err as Error).message }, "check failed; the next one retries");
      } finally {
        release(job);
      }
    });

    // The next check is due one interval after this one began (no drift by the check's length). It
    // waits for every attempt whose nodes answered by then, not for a node still silent then.
    const due = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, startedAt + deps.intervalMs - Date.now()));
    });
    await Promise.all(
      jobs.map((job, i) =>
        Promise.race([
          applied[i],
          due.then(() => (nodesOf(job).every((n) => answered.has(n) || !probes.has(n)) ? applied[i] : undefined)),
        ]),
      ),
    );
    // The next check is not held back by this one's telemetry insert.
    await scheduleClusterCheck(deps.bus, deps.intervalMs, clusterId, startedAt);
    await storeSamples();
    deps.logger.debug({ cluster: cluster.name, attempts: jobs.length, ms: Date.now() - startedAt }, "cluster checked");
    // Attempts on a slow node are applied when it answers (or its probe times out).
    await Promise.all(applied);
    await storeSamples();
    deps.checks.clusterChecked("total", (Date.now() - startedAt) / 1000);
  } finally {
    clearTimeout(timer);
  }
}

/** An attempt started (the launcher's message): its cluster's checks include it from the next one. */
export async function watchAttempt(deps: MonitorDeps, jobId: string, attemptId: string): Promise<void> {
  const job = await deps.repos.jobs.byId(jobId);
  if (job?.status !== "RUNNING" || job.currentAttemptId !== attemptId) return;
  await scheduleClusterCheck(deps.bus, deps.intervalMs, job.clusterId.toString());
}

/** What each node probe returned: per attempt id, or the error that kept the node from answering. */
export type NodeProbes = Map<string, Map<string, ProbeResult> | Error>;

const nodesOf = (job: JobDoc): string[] => (currentAttempt(job)?.nodes ?? []).map((n) => n.name);

/** Per node of the cluster, the running attempts to probe there (pure). */
export function probeTargets(cluster: ClusterDoc, jobs: JobDoc[]): Map<string, NodeProbeTarget[]> {
  const targets = new Map<string, NodeProbeTarget[]>();
  for (const job of jobs) {
    const attempt = currentAttempt(job);
    for (const node of attempt?.nodes ?? []) {
      const spec = cluster.nodes.find((n) => n.name === node.name);
      if (!attempt || !spec) continue;
      const target = { attemptId: attempt.id, dir: attemptDir(spec.workRoot, job._id.toString(), attempt.id) };
      targets.set(node.name, [...(targets.get(node.name) ?? []), target]);
    }
  }
  return targets;
}

/** One round trip to a node for all its attempts; a node that cannot be asked answers with the error. */
async function probeNode(
  deps: MonitorDeps,
  cluster: ClusterDoc,
  node: string,
  targets: NodeProbeTarget[],
): Promise<Map<string, ProbeResult> | Error> {
  try {
    return await deps.gateway.probeAttempts(cluster, node, targets);
  } catch (err) {
    return err as Error;
  }
}

/** What each node of a job's current attempt saw of it, as one check of that attempt (pure). */
export function observationsOf(cluster: ClusterDoc, job: JobDoc, seen: NodeProbes): NodeObservation[] {
  const attempt = currentAttempt(job)!;
  return attempt.nodes.map((node) => {
    if (!cluster.nodes.some((n) => n.name === node.name)) return { node, error: "node no longer in cluster" };
    const result = seen.get(node.name);
    if (result instanceof Error) return { node, error: result.message };
    const probe = result?.get(attempt.id);
    return probe ? { node, probe } : { node, error: "the node probe did not report this attempt" };
  });
}

/** Runs at most `n` of the given functions at once; a finished one hands its slot to the next waiting. */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (active < n) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
