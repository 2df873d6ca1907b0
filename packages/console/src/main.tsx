import { render } from "preact";
import { useEffect } from "preact/hooks";
import { api, session } from "./api";
import { usePoll } from "./hooks";
import { type Me, MeContext } from "./me";
import { ClustersPage } from "./pages/clusters";
import { JobPage } from "./pages/job";
import { JobsPage } from "./pages/jobs";
import { LoginPage } from "./pages/login";
import { MoneyPage } from "./pages/money";
import { NotFound } from "./pages/not-found";
import { TeamPage } from "./pages/team";
import { navigate, onLinkClick, usePath } from "./router";
import "./style.css";

const NAV = [
  ["/ui/jobs", "Jobs"],
  ["/ui/clusters", "Clusters"],
  ["/ui/money", "Money"],
  ["/ui/team", "Team"],
] as const;

function Shell() {
  const path = usePath();
  const me = usePoll(() => api<Me>("GET", "/v1/me"), null, [session.key()]);
  useEffect(() => {
    if (path === "/ui" || path === "/ui/") navigate("/ui/jobs", true);
  }, [path]);
  if (!me.data) return <main class="page">{me.error ? <p role="alert">{me.error.message}</p> : <p>Loading…</p>}</main>;

  const jobMatch = /^\/ui\/jobs\/([^/]+)$/.exec(path);
  let page = <NotFound what="page" />;
  if (path === "/ui/jobs") page = <JobsPage />;
  else if (jobMatch) page = <JobPage id={decodeURIComponent(jobMatch[1]!)} />;
  else if (path === "/ui/clusters") page = <ClustersPage />;
  else if (path === "/ui/money") page = <MoneyPage />;
  else if (path === "/ui/team") page = <TeamPage />;

  return (
    <MeContext.Provider value={me.data}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Trainyard</span>
        <nav aria-label="Main">
          {NAV.map(([href, label]) => (
            <a key={href} href={href} aria-current={path.startsWith(href) ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who">
          {me.data.team} · <span data-testid="role">{me.data.role}</span>
        </span>
        <button
          type="button"
          class="link"
          onClick={() => {
            session.clear();
            navigate("/ui/login");
          }}
        >
          Log out
        </button>
      </header>
      <main id="main" class="page">
        {page}
      </main>
    </MeContext.Provider>
  );
}

function App() {
  const path = usePath();
  if (path === "/ui/login" || !session.key()) {
    if (path !== "/ui/login") queueMicrotask(() => navigate("/ui/login", true));
    return <LoginPage />;
  }
  return <Shell />;
}

document.addEventListener("click", onLinkClick);
render(<App />, document.getElementById("app")!);
