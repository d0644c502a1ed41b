// The page: header (identity, connection), navigation, and the Live or Detectors view, each panel in its own error boundary.
import { useEffect, type KeyboardEvent } from "react";
import { DetectorList } from "../detectors/DetectorList";
import { Editor } from "../detectors/Editor";
import { Counters, LivePanel } from "../live/LivePanel";
import { DriftPanel } from "../live/DriftPanel";
import { tokenCleared } from "./auth";
import { ErrorBoundary } from "./ErrorBoundary";
import { useAppDispatch, useAppSelector } from "./hooks";
import { navigated, type Route } from "./route";
import { TokenForm } from "./TokenForm";
import type { ConnectionState } from "../ws/connectionSlice";

function Identity() {
  const claims = useAppSelector((s) => s.auth.claims);
  if (!claims) return null;
  const exp = claims.exp ? new Date(claims.exp * 1000).toLocaleString() : "never";
  return (
    <div id="identity" className="identity" title={`token expires ${exp}`}>
      tenant {claims.tenant ?? "?"} · user {claims.sub ?? "?"}
    </div>
  );
}

const STATE_TEXT: Record<ConnectionState, string> = {
  idle: "not connected",
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  failed: "cannot connect",
};

function Connection() {
  const { state, text } = useAppSelector((s) => s.connection);
  // The visible text counts down ("reconnecting in 3.2 s"); a live region on it announced every
  // step. Screen readers hear the state only, from a region whose text changes with the state.
  return (
    <>
      <div id="connection" data-testid="connection" className={`state state-${state}`} data-state={state}>
        {text}
      </div>
      <span className="sr-only" role="status" aria-live="polite" data-testid="connection-announcer">
        connection {STATE_TEXT[state]}
      </span>
    </>
  );
}

const TABS: Array<{ id: "live" | "detectors"; label: string; route: Route }> = [
  { id: "live", label: "Live", route: { view: "live" } },
  { id: "detectors", label: "Detectors", route: { view: "detectors" } },
];

function Nav({ route }: { route: Route }) {
  const dispatch = useAppDispatch();
  const active = route.view === "live" ? "live" : "detectors";
  const onKey = (e: KeyboardEvent<HTMLAnchorElement>, index: number) => {
    // Arrow keys move between the two tabs, as in a tab list.
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    e.preventDefault();
    const next = TABS[(index + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length]!;
    dispatch(navigated(next.route));
    document.getElementById(`nav-${next.id}`)?.focus();
  };
  return (
    <nav aria-label="Views" className="tabs">
      {TABS.map((t, i) => (
        <a
          key={t.id}
          id={`nav-${t.id}`}
          href={t.id === "live" ? "#/live" : "#/detectors"}
          data-testid={`nav-${t.id}`}
          className={active === t.id ? "tab active" : "tab"}
          aria-current={active === t.id ? "page" : undefined}
          onKeyDown={(e) => onKey(e, i)}
        >
          {t.label}
        </a>
      ))}
    </nav>
  );
}

export function App() {
  const dispatch = useAppDispatch();
  const token = useAppSelector((s) => s.auth.token);
  const route = useAppSelector((s) => s.route.route);

  useEffect(() => {
    document.documentElement.dataset.ready = "1";
    performance.mark("aiops:first-render");
  }, []);

  return (
    <>
      <header className="top">
        <h1>
          aiops <span className="sub">operator</span>
        </h1>
        {token && <Nav route={route} />}
        <div className="header-end">
          <Identity />
          <Connection />
        </div>
      </header>
      <main>
        <TokenForm />
        {token && (
          <>
            <div id="board" hidden={route.view !== "live"}>
              <Counters onForget={() => dispatch(tokenCleared(null))} />
              <ErrorBoundary name="The live stream">
                <LivePanel />
              </ErrorBoundary>
              <ErrorBoundary name="The drift table">
                <DriftPanel />
              </ErrorBoundary>
            </div>
            {route.view === "detectors" && (
              <ErrorBoundary name="The detector list">
                <DetectorList />
              </ErrorBoundary>
            )}
            {route.view === "editor" && (
              <ErrorBoundary name="The editor">
                <Editor key={route.name ?? "+new"} name={route.name} />
              </ErrorBoundary>
            )}
          </>
        )}
      </main>
    </>
  );
}
