import type { JobView } from "@trainyard/common";

/** A plain text table: columns padded to their widest cell, no trailing spaces. */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? "-" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function usd(v: number | undefined): string {
  if (v === undefined) return "-";
  return v < 0.01 && v > 0 ? `$${v.toFixed(4)}` : `$${v.toFixed(2)}`;
}

/** 75 → "1m15s"; 3 → "3s"; 7300 → "2h01m". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`;
}

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "-";
  return duration((now - Date.parse(iso)) / 1000);
}

/** "step 7/40 (18%) loss 9.1957" or "-". */
export function progressText(p: JobView["progress"]): string {
  if (!p) return "-";
  let s = `step ${p.step}/${p.totalSteps ?? "?"}`;
  if (p.ratio !== undefined) s += ` (${Math.round(p.ratio * 100)}%)`;
  if (p.loss !== undefined) s += ` loss ${Number(p.loss).toFixed(4)}`;
  return s;
}

/** One line about a job's state as `submit` prints it when something changes. */
export function statusLine(job: JobView): string {
  const parts: string[] = [job.status];
  if (job.progress) parts.push(progressText(job.progress));
  if (job.waitingReason && ["QUEUED", "PENDING"].includes(job.status)) parts.push(job.waitingReason);
  if (job.status === "RETRYING" && job.retryAt) parts.push(`next attempt at ${job.retryAt}`);
  if (job.cost) parts.push(usd(job.cost.usd));
  return parts.join(", ");
}

export function jobRows(jobs: JobView[], now = Date.now()): string {
  return table(
    ["ID", "NAME", "PROJECT", "STATUS", "NODES", "PROGRESS", "COST", "AGE"],
    jobs.map((j) => [
      j.id,
      j.name,
      j.project,
      j.status,
      `${j.spec.resources.nodes}x${j.spec.resources.gpusPerNode}`,
      progressText(j.progress),
      j.cost ? usd(j.cost.usd) : "-",
      age(j.createdAt, now),
    ]),
  );
}

export function jobDetail(j: JobView): string {
  const lines = [
    `id:        ${j.id}`,
    `name:      ${j.name} (project ${j.project}, team ${j.team})`,
    `framework: ${j.framework} on cluster ${j.clusterName}, ${j.spec.resources.nodes} nodes x ${j.spec.resources.gpusPerNode}`,
    `status:    ${j.status}${j.waitingReason ? ` (${j.waitingReason})` : ""}`,
    `progress:  ${progressText(j.progress)}`,
    `cost:      ${j.cost ? `${usd(j.cost.usd)} (${j.cost.gpuHours.toFixed(4)} GPU-h${j.cost.final ? ", final" : ""})` : "-"}`,
    `created:   ${j.createdAt}${j.startedAt ? `, started ${j.startedAt}` : ""}${j.endedAt ? `, ended ${j.endedAt}` : ""}`,
  ];
  if (j.failure) lines.push(`failure:   ${j.failure.reason}`);
  for (const a of j.attempts) {
    lines.push(`attempt ${a.number} (${a.id})${a.outcome ? `: ${a.outcome}` : ""}${a.reason ? ` — ${a.reason}` : ""}`);
    for (const n of a.nodes)
      lines.push(`  ${n.name} rank ${n.nodeRank} ${n.host} ${n.state}${n.exitCode !== undefined ? ` exit=${n.exitCode}` : ""}`);
  }
  return lines.join("\n");
}

/** "2026-03" → [2026-03-01T00:00:00.000Z, 2026-04-01T00:00:00.000Z). */
export function monthRange(month: string): { from: string; to: string } {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  const y = Number(m?.[1]);
  const mo = Number(m?.[2]);
  if (!m || mo < 1 || mo > 12) throw new Error(`month '${month}' must be YYYY-MM`);
  return { from: new Date(Date.UTC(y, mo - 1, 1)).toISOString(), to: new Date(Date.UTC(y, mo, 1)).toISOString() };
}

/** Keeps the last `n` complete lines of a text (a trailing partial line counts as one). */
export function lastLines(text: string, n: number): string {
  if (n <= 0) return "";
  const lines = text.split("\n");
  const trailing = lines[lines.length - 1] === "" ? lines.pop() : undefined;
  return lines.slice(-n).join("\n") + (trailing !== undefined ? "\n" : "");
}

/** Splits streamed text into complete lines, keeping a partial last line until its end comes. */
export class LineBuffer {
  private rest = "";
  push(text: string): string[] {
    const parts = (this.rest + text).split("\n");
    this.rest = parts.pop() ?? "";
    return parts;
  }
  flush(): string[] {
    const r = this.rest;
    this.rest = "";
    return r ? [r] : [];
  }
}
