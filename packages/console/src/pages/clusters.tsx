import type { ClusterView } from "@trainyard/common";
import { useState } from "preact/hooks";
import { type ApiError, api } from "../api";
import { ErrorNote, Section, TableWrap } from "../components";
import { allows } from "../format";
import { usePoll } from "../hooks";
import { useMe } from "../me";

interface CheckNode {
  node: string;
  reachable: boolean;
  hostKeyFingerprint?: string;
  pinned?: boolean;
  hostKeyMismatch?: boolean;
  pinnedNow?: boolean;
  error?: string;
  placementBlocked?: string;
}

/** Clusters the team owns or shares: nodes, GPUs in use, host-key pins; owners' admins run a check. */
export function ClustersPage() {
  const me = useMe();
  const clusters = usePoll(() => api<{ items: ClusterView[] }>("GET", "/v1/clusters"), 5000, []);
  return (
    <>
      <h1>Clusters</h1>
      <ErrorNote error={clusters.error} />
      {clusters.data?.items.map((c) => (
        <ClusterCard key={c.id} cluster={c} canCheck={allows(me.role, "admin") && c.team === me.team} />
      ))}
      {clusters.data && !clusters.data.items.length && <p class="muted">No clusters registered.</p>}
    </>
  );
}

function ClusterCard({ cluster: c, canCheck }: { cluster: ClusterView; canCheck: boolean }) {
  const [check, setCheck] = useState<CheckNode[]>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setCheck((await api<{ nodes: CheckNode[] }>("POST", `/v1/clusters/${c.id}/check`)).nodes);
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  const free = c.nodes.reduce((s, n) => s + Math.max(0, n.gpus - n.gpusUsed), 0);
  const total = c.nodes.reduce((s, n) => s + n.gpus, 0);
  return (
    <Section
      title={`Cluster ${c.name}`}
      actions={
        canCheck && (
          <button type="button" onClick={run} disabled={busy}>
            {busy ? "Checking…" : "Check nodes"}
          </button>
        )
      }
    >
      <p class="muted">
        Team {c.team}
        {c.sharedWith?.length ? ` · shared with ${c.sharedWith.join(", ")}` : ""} · {free} of {total} GPUs free · host keys{" "}
        {c.ssh.trustOnFirstUse ? "trusted on first use" : "pinned at registration"}
      </p>
      <ErrorNote error={error} />
      <TableWrap label={`Nodes of ${c.name}`}>
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Address</th>
            <th scope="col">GPUs used / total</th>
            <th scope="col">Type</th>
            <th scope="col">Host key</th>
            <th scope="col">Placement</th>
            {check && <th scope="col">Last check</th>}
          </tr>
        </thead>
        <tbody>
          {c.nodes.map((n) => {
            const pin = c.ssh.hostKeys[n.name];
            const seen = check?.find((x) => x.node === n.name);
            return (
              <tr key={n.name}>
                <td>{n.name}</td>
                <td>
                  {n.user}@{n.host}:{n.port}
                </td>
                <td>
                  <meter min={0} max={n.gpus} value={n.gpusUsed} aria-label={`GPUs used on ${n.name}`} /> {n.gpusUsed} / {n.gpus}
                </td>
                <td>{n.gpuType}</td>
                <td>{pin ? <code title={pin}>pinned {pin.slice(0, 19)}…</code> : <em>not pinned</em>}</td>
                <td>{n.placementBlocked ?? "open"}</td>
                {check && (
                  <td>
                    {!seen
                      ? "–"
                      : seen.reachable
                        ? seen.hostKeyMismatch
                          ? "host key CHANGED (refused)"
                          : seen.pinnedNow
                            ? "reachable; key pinned now"
                            : "reachable; key matches"
                        : `unreachable: ${seen.error ?? ""}`}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </TableWrap>
    </Section>
  );
}
