import type { CheckpointView, JobView, ProgressSampleView } from "@trainyard/common";
import { useEffect, useMemo, useState } from "preact/hooks";
import { type ApiError, api, followLogs } from "../api";
import { Chart, ErrorNote, LogViewer, ProgressBar, Section, StatusBadge, TableWrap } from "../components";
import { allows, duration, ranksOf, searchLines, TERMINAL, time, usd } from "../format";
import { usePoll } from "../hooks";
import { useMe } from "../me";
import { navigate } from "../router";
import { NotFound } from "./not-found";

/** One job: what it is doing, why it waits, what it cost, its loss curve and its live logs. */
export function JobPage({ id }: { id: string }) {
  const me = useMe();
  const job = usePoll(() => api<JobView>("GET", `/v1/jobs/${encodeURIComponent(id)}`), 2000, [id]);
  const [note, setNote] = useState<string>();
  const [actionError, setActionError] = useState<ApiError>();

  if (job.error?.status === 404 || job.error?.status === 400) return <NotFound what="job" detail={`(${id})`} />;
  if (!job.data) return job.error ? <ErrorNote error={job.error} /> : <p>Loading…</p>;
  const j = job.data;
  const terminal = TERMINAL.has(j.status);
  const canAct = allows(me.role, "member");

  const act = async (what: "cancel" | "resubmit") => {
    setActionError(undefined);
    try {
      const res = await api<{ id: string }>("POST", `/v1/jobs/${j.id}/${what}`);
      if (what === "resubmit") navigate(`/ui/jobs/${res.id}`);
      else setNote("Cancellation requested: every rank is being stopped.");
      job.reload();
    } catch (err) {
      setActionError(err as ApiError);
    }
  };

  return (
    <>
      <div class="title-row">
        <h1>
          {j.name} <StatusBadge status={j.status} />
        </h1>
        {canAct && (
          <div class="actions">
            {!terminal && (
              <button type="button" class="danger" onClick={() => act("cancel")}>
                Cancel job
              </button>
            )}
            <button type="button" onClick={() => act("resubmit")}>
              Resubmit
            </button>
          </div>
        )}
      </div>
      <p class="muted">
        {j.team} / {j.project} · {j.framework} · cluster {j.clusterName} · {j.spec.resources.nodes} nodes ×{" "}
        {j.spec.resources.gpusPerNode} GPUs · submitted {time(j.createdAt)} · <code>{j.id}</code>
      </p>
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={actionError} />
      {j.failure && (
        <p class="error" role="status">
          {j.failure.reason}
        </p>
      )}
      {j.waitingReason && (
        <Section title="Waiting">
          <p data-testid="waiting">
            {j.queuePosition !== undefined && <strong>Position {j.queuePosition} in the queue. </strong>}
            {j.waitingReason}
          </p>
        </Section>
      )}
      <Overview job={j} />
      <LossChart id={j.id} live={!terminal} />
      <Timeline job={j} />
      <Checkpoints id={j.id} live={!terminal} />
      <Logs job={j} />
    </>
  );
}

function Overview({ job: j }: { job: JobView }) {
  const p = j.progress;
  return (
    <Section title="Progress and cost">
      <ProgressBar ratio={p?.ratio} label="Job progress" />
      <dl class="facts">
        <div>
          <dt>Step</dt>
          <dd data-testid="step">{p ? `${p.step}${p.totalSteps ? ` of ${p.totalSteps}` : ""}` : "–"}</dd>
        </div>
        <div>
          <dt>Loss</dt>
          <dd>{p?.loss !== undefined ? p.loss.toFixed(4) : "–"}</dd>
        </div>
        <div>
          <dt>ETA</dt>
          <dd>{TERMINAL.has(j.status) ? "done" : duration(j.cost?.etaSeconds)}</dd>
        </div>
        <div>
          <dt>Cost so far</dt>
          <dd>{usd(j.cost?.usd)}</dd>
        </div>
        <div>
          <dt>Forecast</dt>
          <dd>{usd(j.cost?.forecastUsd ?? j.cost?.usd)}</dd>
        </div>
        <div>
          <dt>Burn rate</dt>
          <dd>{j.cost ? `${usd(j.cost.burnUsdPerHour)}/h` : "–"}</dd>
        </div>
        <div>
          <dt>GPU-hours</dt>
          <dd>{j.cost ? j.cost.gpuHours.toFixed(3) : "–"}</dd>
        </div>
      </dl>
    </Section>
  );
}

function LossChart({ id, live }: { id: string; live: boolean }) {
  const progress = usePoll(() => api<{ items: ProgressSampleView[] }>("GET", `/v1/jobs/${id}/progress`), live ? 2000 : null, [
    id,
    live,
  ]);
  const items = progress.data?.items ?? [];
  const last = items.at(-1);
  // Samples in order; the x axis is the sample's position so a retry's steps (back to its checkpoint) still draw left to right.
  const x = items.map((_, i) => i);
  const summary = last
    ? `${items.length} samples; latest step ${last.step}${last.loss !== undefined ? `, loss ${last.loss.toFixed(4)}` : ""}`
    : "no progress reported yet";
  return (
    <Section title="Loss by step">
      <ErrorNote error={progress.error} />
      <Chart
        label="Loss by step"
        testId="loss-chart"
        summary={summary}
        x={x}
        xLabel="step"
        yLabel="loss"
        xValues={(v) => String(items[Math.round(v)]?.step ?? "")}
        series={[{ label: "loss", values: items.map((s) => s.loss ?? null), color: "#1f6feb" }]}
      />
    </Section>
  );
}

function Timeline({ job: j }: { job: JobView }) {
  const per = j.spec.resources.gpusPerNode;
  return (
    <Section title="Attempts">
      <ol class="timeline">
        {j.attempts.map((a) => (
          <li key={a.id}>
            <p>
              <strong>Attempt {a.number}</strong> {a.outcome ? <StatusBadge status={a.outcome} /> : <em>current</em>} · created{" "}
              {time(a.createdAt)} · started {time(a.startedAt)} · ended {time(a.endedAt)}
            </p>
            {a.reason && <p class="reason">Reason: {a.reason}</p>}
            <TableWrap label={`Nodes of attempt ${a.number}`}>
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Host</th>
                  <th scope="col">Node rank</th>
                  <th scope="col">Ranks</th>
                  <th scope="col">State</th>
                  <th scope="col">Exit code</th>
                  <th scope="col">GPUs</th>
                  <th scope="col">Last seen</th>
                </tr>
              </thead>
              <tbody>
                {a.nodes.map((n) => (
                  <tr key={n.name}>
                    <td>{n.name}</td>
                    <td>{n.host}</td>
                    <td>{n.nodeRank}</td>
                    <td>{j.framework === "pytorch" ? ranksOf(n.nodeRank, per) : "–"}</td>
                    <td>
                      <span class={`state state-${n.state}`}>{n.state}</span>
                    </td>
                    <td>{n.exitCode ?? "–"}</td>
                    <td>{n.gpuIndices.join(", ") || "–"}</td>
                    <td>{time(n.lastSeenAt)}</td>
                  </tr>
                ))}
              </tbody>
            </TableWrap>
          </li>
        ))}
        {!j.attempts.length && <li class="muted">No attempt yet.</li>}
      </ol>
    </Section>
  );
}

function Checkpoints({ id, live }: { id: string; live: boolean }) {
  const cps = usePoll(() => api<{ items: CheckpointView[] }>("GET", `/v1/jobs/${id}/checkpoints`), live ? 5000 : null, [
    id,
    live,
  ]);
  const items = cps.data?.items ?? [];
  const latest = items.find((c) => c.state === "complete");
  return (
    <Section title="Checkpoints">
      <ErrorNote error={cps.error} />
      {items.length ? (
        <TableWrap label="Checkpoints">
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Attempt</th>
              <th scope="col">Node</th>
              <th scope="col">Path</th>
              <th scope="col">Storage copy</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id}>
                <td>
                  {c.step} {c === latest && <span class="badge">latest</span>}
                </td>
                <td>{c.attemptNumber}</td>
                <td>{c.node}</td>
                <td>
                  <code>{c.path}</code>
                </td>
                <td>{c.storedUri ? <code>{c.storedUri}</code> : "–"}</td>
                <td>{c.state}</td>
                <td>{time(c.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </TableWrap>
      ) : (
        <p class="muted">No checkpoints.</p>
      )}
    </Section>
  );
}

function Logs({ job: j }: { job: JobView }) {
  const attempt = j.attempts.at(-1);
  const nodes = attempt?.nodes ?? [];
  const [node, setNode] = useState<string>();
  const [lines, setLines] = useState<string[]>([]);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState("");
  const [state, setState] = useState<string>("");
  const chosen = node ?? nodes[0]?.name;

  // One stream per (attempt, node): the server sends the log so far, then new lines as they come.
  useEffect(() => {
    if (!chosen || !attempt) return;
    const abort = new AbortController();
    setLines([]);
    setState("following");
    void followLogs(
      j.id,
      chosen,
      {
        onLines: (more) => setLines((ls) => [...ls, ...more]),
        onEnd: (status) => setState(`ended (${status})`),
        onError: (message) => setState(`read error: ${message}; retrying`),
      },
      abort.signal,
    );
    return () => abort.abort();
  }, [j.id, chosen, attempt?.id]);

  const shown = useMemo(() => searchLines(lines, query), [lines, query]);
  const download = () => {
    const url = URL.createObjectURL(new Blob([lines.join("\n")], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${j.name}-${chosen}-attempt${attempt?.number ?? 0}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  if (!attempt) return null;
  return (
    <Section title="Logs">
      <div class="filters">
        <label>
          Node
          <select aria-label="Node" value={chosen} onChange={(e) => setNode((e.target as HTMLSelectElement).value)}>
            {nodes.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name} (node rank {n.nodeRank}
                {j.framework === "pytorch" ? `, ranks ${ranksOf(n.nodeRank, j.spec.resources.gpusPerNode)}` : ""})
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input
            aria-label="Search"
            type="search"
            value={query}
            onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
          Follow
        </label>
        <button type="button" onClick={download} disabled={!lines.length}>
          Download
        </button>
      </div>
      <p class="muted" aria-live="polite">
        Attempt {attempt.number}, {chosen}: {lines.length} lines{query ? `, ${shown.length} matching` : ""} · {state}
      </p>
      <LogViewer lines={shown} follow={follow && !query} label={`Log of ${chosen}`} />
    </Section>
  );
}
