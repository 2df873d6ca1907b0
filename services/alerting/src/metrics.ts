import { Counter, Histogram, type Registry } from "prom-client";

export interface AlertingMetrics {
  received: Counter<"type" | "severity">;
  /** One count per attempt outcome (delivered, retry, failed) and per suppressed duplicate. */
  sent: Counter<"channel" | "channel_type" | "outcome">;
  duration: Histogram<"channel_type">;
}

/** The alerting service's series (channel names are configuration, so their cardinality is bounded). */
export function registerAlertingMetrics(registry: Registry): AlertingMetrics {
  const registers = [registry];
  return {
    received: new Counter({
      name: "trainyard_alert_events_received_total",
      help: "Alert events received by the alerting service, by type and severity",
      labelNames: ["type", "severity"] as const,
      registers,
    }),
    sent: new Counter({
      name: "trainyard_alerts_sent_total",
      help: "Alert delivery attempts by channel and outcome (delivered, retry, failed), and duplicates suppressed",
      labelNames: ["channel", "channel_type", "outcome"] as const,
      registers,
    }),
    duration: new Histogram({
      name: "trainyard_alert_delivery_duration_seconds",
      help: "Time one delivery attempt took, by channel type",
      labelNames: ["channel_type"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
  };
}
