import { readFileSync } from "node:fs";
import { registerAlertingMetrics } from "@trainyard/alerting/metrics";
import { registerCostMetrics } from "@trainyard/cost/metrics";
import { CheckMetrics } from "@trainyard/monitor/check-metrics";
import { type QueueBus, registerQueueDepthMetrics } from "@trainyard/runtime";
import { collectDefaultMetrics, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = new URL("..", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), "utf8");

/** Every series name the services register (built from the same factories the services use). */
function registeredNames(): Set<string> {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: "trainyard_process_" });
  registerCostMetrics(r, async () => ({ jobCounts: [], activeJobs: [], monthJobs: [], budgets: [], now: new Date() }));
  registerAlertingMetrics(r);
  registerQueueDepthMetrics(r, {} as QueueBus);
  new CheckMetrics(r, 5_000);
  return new Set(r.getMetricsAsArray().map((m) => m.name));
}

const referenced = (text: string) => new Set([...text.matchAll(/trainyard_[a-z0-9_]+/g)].map((m) => m[0]));
const base = (n: string) => n.replace(/_(bucket|sum|count)$/, "");

describe("deploy/", () => {
  const names = registeredNames();

  it("the Grafana dashboard parses and references only series that exist", () => {
    const dashboard = JSON.parse(read("deploy/grafana/trainyard.json"));
    expect(dashboard.panels.length).toBeGreaterThan(5);
    const refs = referenced(JSON.stringify(dashboard));
    expect([...refs].filter((n) => !names.has(n) && !names.has(base(n)))).toEqual([]);
    for (const p of dashboard.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });

  it("the Prometheus rules parse and reference only series that exist", () => {
    const rules = parse(read("deploy/prometheus/alerts.yml"));
    const all = rules.groups.flatMap((g: { rules: Array<{ alert: string; expr: string }> }) => g.rules);
    expect(all.length).toBeGreaterThan(5);
    for (const r of all) expect(r.expr, r.alert).toMatch(/trainyard_/);
    const refs = referenced(JSON.stringify(rules));
    expect([...refs].filter((n) => !names.has(n) && !names.has(base(n)))).toEqual([]);
  });

  it("docs/metrics.md lists every series (and names units; counters end in _total)", () => {
    const doc = read("docs/metrics.md");
    for (const n of names) {
      if (n.startsWith("trainyard_process_")) continue;
      expect(doc, n).toContain(`\`${n}\``);
    }
    const r = new Registry();
    registerCostMetrics(r, async () => ({ jobCounts: [], activeJobs: [], monthJobs: [], budgets: [], now: new Date() }));
    registerAlertingMetrics(r);
    for (const m of r.getMetricsAsArray()) {
      if ((m as unknown as { type: string }).type === "counter") expect(m.name).toMatch(/_total$/);
    }
  });
});
