import type { JobView } from "@trainyard/common";
import { useState } from "preact/hooks";
import { type ApiError, api } from "../api";
import { ErrorNote, ProgressBar, StatusBadge, TableWrap } from "../components";
import { age, allows, TERMINAL, usd } from "../format";
import { usePoll } from "../hooks";
import { useMe } from "../me";

const STATUSES = ["", "QUEUED", "LAUNCHING", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "STOPPED_BUDGET"];

/** The team's jobs, newest first, polled every 2 s; members select jobs and cancel them together. */
export function JobsPage() {
  const me = useMe();
  const [status, setStatus] = useState("");
  const [project, setProject] = useState("");
  const [limit, setLimit] = useState(50);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [note, setNote] = useState<string>();
  const query = new URLSearchParams({ limit: String(limit), ...(status ? { status } : {}), ...(project ? { project } : {}) });
  const jobs = usePoll(() => api<{ items: JobView[]; nextCursor?: string }>("GET", `/v1/jobs?${query}`), 2000, [
    query.toString(),
  ]);
  const canAct = allows(me.role, "member");
  const items = jobs.data?.items ?? [];
  const cancellable = items.filter((j) => !TERMINAL.has(j.status));

  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const cancelSelected = async () => {
    const ids = [...selected];
    const results = await Promise.allSettled(ids.map((id) => api("POST", `/v1/jobs/${id}/cancel`)));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${ids[i]}: ${(r.reason as ApiError).message}`] : []));
    setNote(
      failed.length
        ? `Cancelled ${ids.length - failed.length}; not cancelled: ${failed.join("; ")}`
        : `Cancelling ${ids.length} job(s)`,
    );
    setSelected(new Set());
    jobs.reload();
  };

  return (
    <>
      <h1>Jobs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter jobs">
        <label>
          Status
          <select aria-label="Status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Project
          <input
            aria-label="Project"
            type="search"
            value={project}
            placeholder="any"
            onChange={(e) => setProject((e.target as HTMLInputElement).value.trim())}
          />
        </label>
        {canAct && (
          <button type="button" class="danger" disabled={selected.size === 0} onClick={cancelSelected}>
            Cancel selected ({selected.size})
          </button>
        )}
      </form>
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={jobs.error} />
      <TableWrap label="Jobs">
        <thead>
          <tr>
            {canAct && (
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label="Select every active job"
                  checked={cancellable.length > 0 && cancellable.every((j) => selected.has(j.id))}
                  onChange={(e) =>
                    setSelected((e.target as HTMLInputElement).checked ? new Set(cancellable.map((j) => j.id)) : new Set())
                  }
                />
              </th>
            )}
            <th scope="col">Job</th>
            <th scope="col">Status</th>
            <th scope="col">Team / project</th>
            <th scope="col">Framework</th>
            <th scope="col">Nodes × GPUs</th>
            <th scope="col">Progress</th>
            <th scope="col">Cost</th>
            <th scope="col">Age</th>
          </tr>
        </thead>
        <tbody>
          {items.map((j) => (
            <tr key={j.id} data-job={j.id}>
              {canAct && (
                <td>
                  {!TERMINAL.has(j.status) && (
                    <input
                      type="checkbox"
                      aria-label={`Select ${j.name}`}
                      checked={selected.has(j.id)}
                      onChange={() => toggle(j.id)}
                    />
                  )}
                </td>
              )}
              <td>
                <a href={`/ui/jobs/${j.id}`}>{j.name}</a>
              </td>
              <td>
                <StatusBadge status={j.status} />
              </td>
              <td>
                {j.team} / {j.project ?? "–"}
              </td>
              <td>{j.framework}</td>
              <td>
                {j.spec.resources.nodes} × {j.spec.resources.gpusPerNode}
              </td>
              <td class="cell-progress">
                <ProgressBar ratio={j.progress?.ratio} label={`Progress of ${j.name}`} />
              </td>
              <td>{usd(j.cost?.usd)}</td>
              <td>{age(j.createdAt)}</td>
            </tr>
          ))}
          {!items.length && !jobs.loading && (
            <tr>
              <td colSpan={9} class="muted">
                No jobs{status || project ? " match these filters" : " yet"}.
              </td>
            </tr>
          )}
        </tbody>
      </TableWrap>
      {jobs.data?.nextCursor && (
        <button type="button" onClick={() => setLimit((l) => Math.min(200, l + 50))} disabled={limit >= 200}>
          Show more
        </button>
      )}
    </>
  );
}
