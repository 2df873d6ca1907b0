/** Pure display helpers (no DOM), shared by the pages. */

export function usd(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return v >= 100 ? `$${v.toFixed(0)}` : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toFixed(4)}`;
}

/** "42 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Age of an ISO time relative to `now`. */
export function age(iso: string | undefined, now: number = Date.now()): string {
  if (!iso) return "–";
  return duration((now - Date.parse(iso)) / 1000);
}

export function time(iso: string | undefined): string {
  if (!iso) return "–";
  return new Date(iso)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** Global ranks of a node, for frameworks that start `gpusPerNode` ranks per node. */
export function ranksOf(nodeRank: number, gpusPerNode: number): string {
  const per = Math.max(1, gpusPerNode);
  const first = nodeRank * per;
  return per === 1 ? `${first}` : `${first}–${first + per - 1}`;
}

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"]);
export const ROLES = ["viewer", "member", "admin", "operator"] as const;
export type Role = (typeof ROLES)[number];

/** Whether `role` includes `least` (each role includes the ones before it). */
export function allows(role: string | undefined, least: Role): boolean {
  return ROLES.indexOf(role as Role) >= ROLES.indexOf(least);
}

/** Lines of `lines` containing `query`, case-insensitively, with their line numbers (1-based). */
export function searchLines(lines: string[], query: string): Array<{ n: number; text: string }> {
  const q = query.trim().toLowerCase();
  const out: Array<{ n: number; text: string }> = [];
  lines.forEach((text, i) => {
    if (!q || text.toLowerCase().includes(q)) out.push({ n: i + 1, text });
  });
  return out;
}
