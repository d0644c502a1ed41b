// The tenant's configurations with their confirmation state and what each caught in the last hour.
import { useState } from "react";
import { useListDetectorsQuery } from "../api/api";
import { canWrite } from "../app/auth";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { navigated } from "../app/route";
import { clock, time } from "../live/format";
import { caughtLastHour } from "../live/liveSlice";
import { applyRequested } from "../optimistic/listener";
import { mergeList, type BadgeState } from "../optimistic/optimistic";
import { ChangeNotice } from "./ChangeNotice";
import { description, matcherSummary } from "./summary";

const BADGE_TEXT: Record<BadgeState, string> = {
  live: "live",
  pending: "pending",
  failed: "failed",
  conflict: "conflict",
  unconfirmed: "unconfirmed",
};

export function DetectorList() {
  const dispatch = useAppDispatch();
  const token = useAppSelector((s) => s.auth.token);
  const { data, error, isLoading, refetch } = useListDetectorsQuery(undefined, { skip: !token });
  const changes = useAppSelector((s) => s.optimistic.changes);
  const caught = useAppSelector((s) => s.live.caught);
  const tenant = useAppSelector((s) => s.auth.claims?.tenant ?? "");
  const writable = useAppSelector((s) => canWrite(s.auth.claims));
  const [confirming, setConfirming] = useState<string | null>(null);
  const rows = mergeList(data ?? [], changes, tenant);
  const now = Date.now();

  return (
    <section aria-labelledby="h-detectors">
      <div className="section-head">
        <h2 id="h-detectors">Detector configurations</h2>
        <button type="button" data-testid="new-detector" disabled={!writable} onClick={() => dispatch(navigated({ view: "editor", name: null }))}>
          New detector
        </button>
      </div>
      {!writable && <p className="muted">This token may read configurations only (no detectors:write scope).</p>}
      {error && (
        <div className="notice-box failed" role="alert">
          <p>Could not load the configurations.</p>
          <button type="button" onClick={() => void refetch()}>
            Retry
          </button>
        </div>
      )}
      {isLoading && <p className="muted">Loading…</p>}
      {!isLoading && rows.length === 0 && !error && <p className="muted">No configurations yet: every series uses the built-in default.</p>}
      <ul className="detector-list">
        {rows.map((row) => {
          const entry = row.entry;
          const c = caught[row.name];
          const recent = caughtLastHour(c, now);
          return (
            <li key={row.name} className="card" data-testid="detector-row" data-name={row.name} data-version={entry?.version ?? ""}>
              <div className="card-main">
                <div className="card-title">
                  <h3>{row.name}</h3>
                  <span className={`badge badge-${row.state}`} data-testid="state-badge" data-state={row.state} role="status" aria-live="polite">
                    {BADGE_TEXT[row.state]}
                  </span>
                  {row.change?.state === "live" && row.change.elapsedMs !== null && (
                    <span className="muted small">confirmed in {row.change.elapsedMs} ms</span>
                  )}
                </div>
                <p className="desc">{description(entry?.config) || <span className="muted">no description</span>}</p>
                <p className="meta">
                  <code>{matcherSummary(entry?.config)}</code>
                  {entry ? (
                    <>
                      {" "}
                      · version {entry.version} · {entry.updated_by} · {time(entry.updated_at)}
                    </>
                  ) : (
                    " · not created"
                  )}
                </p>
                <p className="meta">
                  caught recently: <strong>{recent}</strong> in the last hour
                  {c?.last ? ` · last ${clock(c.last.timestamp)} ${c.last.severity} on ${c.last.series}` : ""}
                </p>
                {row.change && <ChangeNotice change={row.change} />}
              </div>
              <div className="card-actions">
                <button
                  type="button"
                  className="secondary"
                  data-testid={`edit-${row.name}`}
                  onClick={() => dispatch(navigated({ view: "editor", name: row.name }))}
                >
                  Edit
                </button>
                {entry &&
                  writable &&
                  (confirming === row.name ? (
                    <span className="confirm">
                      <button
                        type="button"
                        className="danger"
                        data-testid={`confirm-delete-${row.name}`}
                        onClick={() => {
                          setConfirming(null);
                          dispatch(
                            applyRequested({
                              name: row.name,
                              kind: "delete",
                              config: null,
                              reason: "deleted in the UI",
                              baseVersion: entry.version,
                              previous: entry,
                            }),
                          );
                        }}
                      >
                        Delete {row.name}
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <button type="button" className="secondary" data-testid={`delete-${row.name}`} onClick={() => setConfirming(row.name)}>
                      Delete
                    </button>
                  ))}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
