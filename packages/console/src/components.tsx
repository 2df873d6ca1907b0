import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ApiError } from "./api";

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status.toLowerCase()}`}>{status}</span>;
}

/** A labelled progress bar; `ratio` in 0..1 (unknown when the job reports no total). */
export function ProgressBar({ ratio, label }: { ratio: number | undefined; label: string }) {
  const pct = ratio === undefined ? undefined : Math.round(ratio * 100);
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      {...(pct !== undefined ? { "aria-valuenow": pct } : {})}
    >
      <div class="progress-fill" style={{ width: `${pct ?? 0}%` }} />
      <span class="progress-text">{pct === undefined ? "–" : `${pct}%`}</span>
    </div>
  );
}

export function ErrorNote({ error }: { error?: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section class="card" aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns. */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // Chromium focuses scrollable containers by keyboard itself (no tabindex needed).
    <section class="table-wrap" aria-label={label}>
      <table>{children}</table>
    </section>
  );
}

function useWidth(ref: { current: HTMLElement | null }): number {
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, [ref]);
  return width;
}

/**
 * A uPlot chart of one or more series over x. `bars` draws bars (categories on x by index).
 * `summary` is read by screen readers in place of the canvas.
 */
export function Chart(props: {
  label: string;
  summary: string;
  x: number[];
  series: Array<{ label: string; values: Array<number | null>; color: string }>;
  xLabel: string;
  yLabel: string;
  bars?: boolean;
  xValues?: (v: number) => string;
  height?: number;
  testId?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const width = useWidth(box);
  const height = props.height ?? 240;
  // Axis labels read the newest props (the chart itself is built once per shape).
  const latest = useRef(props);
  latest.current = props;
  const shape = `${props.series.map((s) => s.label).join("|")}|${props.bars ? "bars" : "lines"}`;

  useEffect(() => {
    if (!box.current || width <= 0) return;
    const opts: uPlot.Options = {
      width,
      height,
      // Bars: one slot per category, from zero up.
      scales: props.bars
        ? {
            x: { time: false, range: () => [-0.5, Math.max(1, latest.current.x.length) - 0.5] },
            y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.15 : 1] },
          }
        : { x: { time: false } },
      legend: { show: true },
      axes: [
        {
          label: props.xLabel,
          ...(props.bars ? { splits: () => latest.current.x } : {}),
          ...(props.xValues
            ? { values: (_u: uPlot, vals: number[]) => vals.map((v) => latest.current.xValues?.(v) ?? String(v)) }
            : {}),
        },
        { label: props.yLabel },
      ],
      series: [
        { label: props.xLabel },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(props.bars ? { fill: `${s.color}99`, paths: uPlot.paths.bars!({ size: [0.6, 80] }) } : {}),
        })),
      ],
    };
    plot.current = new uPlot(opts, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, box.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt only when its shape or size changes; new data goes through setData below.
  }, [shape, width, height]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return (
    <figure class="chart" data-testid={props.testId} data-points={props.x.length}>
      <div ref={box} role="img" aria-label={`${props.label}: ${props.summary}`} />
      <figcaption class="muted">{props.summary}</figcaption>
    </figure>
  );
}

const ROW = 18;

/** Only the visible rows of a long log are in the DOM, so a million lines scroll like ten. */
export function LogViewer({
  lines,
  follow,
  label,
}: {
  lines: Array<{ n: number; text: string }>;
  follow: boolean;
  label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const height = 360;
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length, follow]);
  // The scroll position may be stale after the lines shrank (a search): clamp it to the content.
  const at = Math.min(top, Math.max(0, lines.length * ROW - height));
  const first = Math.max(0, Math.floor(at / ROW) - 20);
  const last = Math.min(lines.length, Math.ceil((at + height) / ROW) + 20);
  return (
    <div
      ref={box}
      class="log"
      style={{ height: `${height}px` }}
      role="log"
      aria-label={label}
      aria-live="off"
      onScroll={(e) => setTop((e.currentTarget as HTMLDivElement).scrollTop)}
    >
      <div style={{ height: `${lines.length * ROW}px`, position: "relative" }}>
        {lines.slice(first, last).map((l, i) => (
          <div class="log-line" key={l.n} style={{ top: `${(first + i) * ROW}px` }}>
            <span class="log-n" aria-hidden="true">
              {l.n}
            </span>
            {l.text}
          </div>
        ))}
      </div>
    </div>
  );
}
