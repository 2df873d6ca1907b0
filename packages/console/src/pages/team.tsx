import type { AuditEventView } from "@trainyard/common";
import { useState } from "preact/hooks";
import { type ApiError, api } from "../api";
import { ErrorNote, Section, TableWrap } from "../components";
import { allows, time } from "../format";
import { usePoll } from "../hooks";
import { useMe } from "../me";

interface Team {
  name: string;
  quota?: { maxGpus?: number; maxJobs?: number };
  defaultPriority?: number;
}
interface KeyView {
  id: string;
  name: string;
  role: string;
  prefix: string;
  createdAt: string;
  createdBy?: string;
  expiresAt?: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

/** The team: its quota (read), and for its admins the keys (a new key is shown once) and the audit log. */
export function TeamPage() {
  const me = useMe();
  const team = usePoll(() => api<Team>("GET", `/v1/teams/${encodeURIComponent(me.team)}`), null, [me.team]);
  const admin = allows(me.role, "admin");
  return (
    <>
      <h1>Team {me.team}</h1>
      <Section title="Quota">
        <ErrorNote error={team.error} />
        <dl class="facts">
          <div>
            <dt>Max GPUs at once</dt>
            <dd>{team.data?.quota?.maxGpus ?? "no limit"}</dd>
          </div>
          <div>
            <dt>Max jobs at once</dt>
            <dd>{team.data?.quota?.maxJobs ?? "no limit"}</dd>
          </div>
          <div>
            <dt>Default priority</dt>
            <dd>{team.data?.defaultPriority ?? 0}</dd>
          </div>
          <div>
            <dt>Your key</dt>
            <dd>
              {me.keyName} ({me.role})
            </dd>
          </div>
        </dl>
      </Section>
      {admin ? (
        <>
          <Keys team={me.team} ownRole={me.role} />
          <Audit />
        </>
      ) : (
        <p class="muted">Keys and the audit log are for the team's admins.</p>
      )}
    </>
  );
}

function Keys({ team, ownRole }: { team: string; ownRole: string }) {
  const keys = usePoll(() => api<{ items: KeyView[] }>("GET", `/v1/teams/${encodeURIComponent(team)}/keys`), null, [team]);
  const [name, setName] = useState("");
  const [role, setRole] = useState("member");
  const [days, setDays] = useState("90");
  const [issued, setIssued] = useState<{ name: string; key: string }>();
  const [confirming, setConfirming] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const roles = ["viewer", "member", "admin", ...(ownRole === "operator" ? ["operator"] : [])];

  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const res = await api<{ key: string; name: string }>("POST", `/v1/teams/${encodeURIComponent(team)}/keys`, {
        name: name.trim(),
        role,
        ...(days ? { expiresInDays: Number(days) } : {}),
      });
      setIssued({ name: res.name, key: res.key });
      setName("");
      keys.reload();
    } catch (err) {
      setError(err as ApiError);
    }
  };
  const revoke = async (id: string) => {
    setError(undefined);
    try {
      await api("DELETE", `/v1/teams/${encodeURIComponent(team)}/keys/${id}`);
      setConfirming(undefined);
      keys.reload();
    } catch (err) {
      setError(err as ApiError);
    }
  };

  return (
    <Section title="API keys">
      <form class="filters" onSubmit={create} aria-label="Create a key">
        <label>
          Name
          <input
            aria-label="Name"
            required
            pattern="[A-Za-z0-9._\-]{1,63}"
            value={name}
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Role
          <select aria-label="Role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
            {roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Expires in days
          <input
            aria-label="Expires in days"
            type="number"
            min={1}
            max={3650}
            value={days}
            onInput={(e) => setDays((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Create key</button>
      </form>
      <ErrorNote error={error} />
      {issued && (
        <div class="issued" role="alert">
          <p>
            Key <strong>{issued.name}</strong> — copy it now, it is shown only once:
          </p>
          <input readOnly aria-label="New API key" value={issued.key} onFocus={(e) => (e.target as HTMLInputElement).select()} />
          <button type="button" onClick={() => setIssued(undefined)}>
            Done
          </button>
        </div>
      )}
      <TableWrap label="API keys">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Prefix</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {keys.data?.items.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>{k.role}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{time(k.createdAt)}</td>
              <td>{time(k.lastUsedAt)}</td>
              <td>{time(k.expiresAt)}</td>
              <td>
                {k.revokedAt ? (
                  `revoked ${time(k.revokedAt)}`
                ) : confirming === k.id ? (
                  <button type="button" class="danger" onClick={() => revoke(k.id)}>
                    Confirm revoke {k.name}
                  </button>
                ) : (
                  <button type="button" onClick={() => setConfirming(k.id)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </TableWrap>
      <ErrorNote error={keys.error} />
    </Section>
  );
}

function Audit() {
  const audit = usePoll(() => api<{ items: AuditEventView[] }>("GET", "/v1/audit?limit=100"), 10_000, []);
  return (
    <Section title="Audit log">
      <ErrorNote error={audit.error} />
      <TableWrap label="Audit log">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
          </tr>
        </thead>
        <tbody>
          {audit.data?.items.map((e) => (
            <tr key={e.id}>
              <td>{time(e.at)}</td>
              <td>
                {e.actor.keyName} ({e.actor.role})
              </td>
              <td>{e.action}</td>
              <td>
                <code>{e.target}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </TableWrap>
    </Section>
  );
}
