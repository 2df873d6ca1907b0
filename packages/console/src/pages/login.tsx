import { useState } from "preact/hooks";
import { ApiError, api, session } from "../api";
import { navigate } from "../router";

/** The key is checked against GET /v1/me, then kept in sessionStorage for this tab only. */
export function LoginPage() {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    session.set(key.trim());
    try {
      await api("GET", "/v1/me");
      navigate("/ui/jobs", true);
    } catch (err) {
      session.clear();
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Trainyard console</h1>
      <form onSubmit={submit} class="card">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-describedby="key-help"
        />
        <p id="key-help" class="muted">
          Kept in this tab's session storage only and sent as a bearer header; never put in a URL.
        </p>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || !key.trim()}>
          Log in
        </button>
      </form>
    </main>
  );
}
