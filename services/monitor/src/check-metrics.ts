import { Histogram, type Registry } from "prom-client";

/**
 * Whether this replica keeps up with its checks. Lag is how late an attempt's check came: the time
 * since this replica's previous check of it, less the interval (0 when on time). It is measured
 * when the check is applied (after its nodes answered), so a slow node's lag counts too.
 */
export class CheckMetrics {
  private readonly lag: Histogram;
  private readonly clusterCheck: Histogram<"phase">;
  /** Per cluster, when this replica last applied a check of each of its attempts (ms). */
  private readonly lastChecked = new Map<string, Map<string, number>>();

  constructor(
    registry: Registry,
    private readonly intervalMs: number,
  ) {
    this.lag = new Histogram({
      name: "trainyard_monitor_check_lag_seconds",
      help: "How late each attempt's check came: time since this replica's previous check of it minus the interval",
      // Fractions and multiples of the interval: the question is how late against it.
      buckets: [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1, 1.5, 2, 4, 8, 16].map((f) => (f * intervalMs) / 1000),
      registers: [registry],
    });
    this.clusterCheck = new Histogram({
      name: "trainyard_monitor_cluster_check_seconds",
      help: "One check of a cluster: probe = until its last node answered, total = until every attempt was applied",
      labelNames: ["phase"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    });
  }

  /** An attempt's check was applied at `now` (ms). */
  checked(clusterId: string, attemptId: string, now: number): void {
    const attempts = this.lastChecked.get(clusterId) ?? new Map<string, number>();
    this.lastChecked.set(clusterId, attempts);
    const previous = attempts.get(attemptId);
    if (previous !== undefined) this.lag.observe(Math.max(0, now - previous - this.intervalMs) / 1000);
    attempts.set(attemptId, now);
  }

  /** Forget the attempts of a cluster that no longer run (ended, or checked by another replica). */
  keepOnly(clusterId: string, attemptIds: ReadonlySet<string>): void {
    const attempts = this.lastChecked.get(clusterId);
    if (!attempts) return;
    for (const id of attempts.keys()) if (!attemptIds.has(id)) attempts.delete(id);
    if (!attempts.size) this.lastChecked.delete(clusterId);
  }

  clusterChecked(phase: "probe" | "total", seconds: number): void {
    this.clusterCheck.observe({ phase }, seconds);
  }
}
