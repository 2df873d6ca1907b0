import type { CostGroup } from "@trainyard/common";
import { useState } from "preact/hooks";
import { api } from "../api";
import { Chart, ErrorNote, Section, TableWrap } from "../components";
import { usd } from "../format";
import { usePoll } from "../hooks";

interface CostReport {
  groupBy: string;
  from: string;
  to: string;
  totalUsd: number;
  totalGpuHours: number;
  items: CostGroup[];
}
interface Budget {
  id: string;
  name: string;
  scope: { type: string; project?: string; jobId?: string };
  limitUsd: number;
  period: string;
  thresholds: number[];
  action: string;
  enabled: boolean;
  current: { period: string; spendUsd: number; usedRatio: number; forecastUsd?: number; exhausted: boolean };
}

/** Month-to-date spend by team or project, and the team's budgets with their state. */
export function MoneyPage() {
  const [groupBy, setGroupBy] = useState<"project" | "team">("project");
  const costs = usePoll(() => api<CostReport>("GET", `/v1/costs?groupBy=${groupBy}`), 10_000, [groupBy]);
  const budgets = usePoll(() => api<{ items: Budget[] }>("GET", "/v1/budgets"), 10_000, []);
  const items = costs.data?.items ?? [];
  return (
    <>
      <h1>Money</h1>
      <Section
        title="Month to date"
        actions={
          <label>
            Group by{" "}
            <select
              aria-label="Group by"
              value={groupBy}
              onChange={(e) => setGroupBy((e.target as HTMLSelectElement).value as "project" | "team")}
            >
              <option value="project">project</option>
              <option value="team">team</option>
            </select>
          </label>
        }
      >
        <ErrorNote error={costs.error} />
        {costs.data && (
          <p>
            <strong>{usd(costs.data.totalUsd)}</strong> for {costs.data.totalGpuHours.toFixed(2)} GPU-hours since{" "}
            {costs.data.from.slice(0, 10)}
          </p>
        )}
        <Chart
          label={`Cost by ${groupBy}`}
          testId="cost-chart"
          summary={items.map((i) => `${i.key}: ${usd(i.usd)}`).join("; ") || "no spend this month"}
          bars
          x={items.map((_, i) => i)}
          xLabel={groupBy}
          yLabel="USD"
          xValues={(v) => (Number.isInteger(v) ? (items[v]?.key ?? "") : "")}
          series={[{ label: "USD", values: items.map((i) => i.usd), color: "#2da44e" }]}
        />
        <TableWrap label={`Cost by ${groupBy}`}>
          <thead>
            <tr>
              <th scope="col">{groupBy}</th>
              <th scope="col">USD</th>
              <th scope="col">GPU-hours</th>
              <th scope="col">Jobs</th>
            </tr>
          </thead>
          <tbody>
            {items.map((i) => (
              <tr key={i.key}>
                <td>{i.key}</td>
                <td>{usd(i.usd)}</td>
                <td>{i.gpuHours.toFixed(3)}</td>
                <td>{i.jobs}</td>
              </tr>
            ))}
          </tbody>
        </TableWrap>
      </Section>
      <Section title="Budgets">
        <ErrorNote error={budgets.error} />
        {budgets.data?.items.length ? (
          <TableWrap label="Budgets">
            <thead>
              <tr>
                <th scope="col">Budget</th>
                <th scope="col">Scope</th>
                <th scope="col">Spent / limit</th>
                <th scope="col">Used</th>
                <th scope="col">Thresholds</th>
                <th scope="col">At the limit</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {budgets.data.items.map((b) => (
                <tr key={b.id}>
                  <td>{b.name}</td>
                  <td>
                    {b.scope.type}
                    {b.scope.project ? ` ${b.scope.project}` : ""}
                    {b.scope.jobId ? ` ${b.scope.jobId}` : ""} · {b.period}
                  </td>
                  <td>
                    {usd(b.current.spendUsd)} / {usd(b.limitUsd)}
                    {b.current.forecastUsd !== undefined ? ` (forecast ${usd(b.current.forecastUsd)})` : ""}
                  </td>
                  <td>
                    <meter
                      min={0}
                      max={1}
                      low={0.5}
                      high={0.8}
                      optimum={0}
                      value={b.current.usedRatio}
                      aria-label={`${b.name} used`}
                    />{" "}
                    {Math.round(b.current.usedRatio * 100)}%
                  </td>
                  <td>{b.thresholds.map((t) => `${t}%`).join(", ")}</td>
                  <td>{b.action}</td>
                  <td>{!b.enabled ? "disabled" : b.current.exhausted ? "exhausted" : "ok"}</td>
                </tr>
              ))}
            </tbody>
          </TableWrap>
        ) : (
          <p class="muted">No budgets.</p>
        )}
      </Section>
    </>
  );
}
