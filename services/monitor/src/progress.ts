import type { JobDoc } from "@trainyard/db";

/**
 * Latest progress from the metrics lines a training script appended
 * ({"step":120,"total_steps":1000,"loss":0.42}); lines without a numeric step are ignored.
 */
export function progressFromMetrics(lines: Array<Record<string, unknown>>, now: Date): JobDoc["progress"] | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const step = line.step;
    if (typeof step !== "number" || !Number.isFinite(step) || line.checkpoint !== undefined) continue;
    const total = typeof line.total_steps === "number" && line.total_steps > 0 ? line.total_steps : undefined;
    const loss = typeof line.loss === "number" && Number.isFinite(line.loss) ? line.loss : undefined;
    return {
      step,
      ...(total !== undefined ? { totalSteps: total, ratio: Math.min(1, step / total) } : {}),
      ...(loss !== undefined ? { loss } : {}),
      updatedAt: now,
    };
  }
  return undefined;
}

/** Every progress line (a numeric step, not a checkpoint announcement), in file order. */
export function stepLines(lines: Array<Record<string, unknown>>): Array<{ step: number; totalSteps?: number; loss?: number }> {
  const out: Array<{ step: number; totalSteps?: number; loss?: number }> = [];
  for (const line of lines) {
    const { step, total_steps: total, loss } = line;
    if (typeof step !== "number" || !Number.isFinite(step) || line.checkpoint !== undefined) continue;
    out.push({
      step,
      ...(typeof total === "number" && total > 0 ? { totalSteps: total } : {}),
      ...(typeof loss === "number" && Number.isFinite(loss) ? { loss } : {}),
    });
  }
  return out;
}
