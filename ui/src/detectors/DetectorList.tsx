// The tenant's configurations with their confirmation state and what each caught in the last hour.
import { useEffect, useRef, useState } from "react";
import { useListDetectorsQuery } from "../api/api";
import type { StoredConfig } from "../api/types";
import { canWrite } from "../app/auth";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { navigated } from "../app/route";
import { clock, time } from "../live/format";
import { caughtLastHour } from "../live/liveSlice";
import { applyRequested } from "../optimistic/listener";
import { mergeList, type BadgeState, type Change, type ListRow } from "../optimistic/optimistic";
import { own } from "../util/dict";
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
  const { data, error, isLoading, refetch, fulfilledTimeStamp } = useListDetectorsQuery(undefined, { skip: !token });
  const changes = useAppSelector((s) => s.optimistic.changes);
  const caught = useAppSelector((s) => s.live.caught);
  const tenant = useAppSelector((s) => s.auth.claims?.tenant ?? "");
  const writable = useAppSelector((s) => canWrite(s.auth.claims));
  const [confirming, setConfirming] = useState<string | null>(null);
  const rows = mergeList(data ?? [], changes, tenant, fulfilledTimeStamp);
  const now = Date.now();
  const heading = useRef<HTMLHeadingElement>(null);
  const returnFocus = useRef<string | null>(null);
  const section = useRef<HTMLElement>(null);

  useEffect(() => {
    // Arriving from the editor (Apply, Revert, Back) unmounted the focused control: start here, not at the page's top.
    if (document.activeElement === null || document.activeElement === document.body) heading.current?.focus();
  }, []);

  useEffect(() => {
    // Cancel puts focus back on the Delete button the confirmation replaced.
    if (confirming === null && returnFocus.current !== null) {
      const testId = `delete-${returnFocus.current}`;
      const buttons = section.current?.querySelectorAll<HTMLElement>("[data-testid^='delete-']") ?? [];
      [...buttons].find((b) => b.dataset.testid === testId)?.focus();
      returnFocus.current = null;
    }
  }, [confirming]);

  return (
    <section aria-labelledby="h-detectors" ref={section}>
      <p className="sr-only" role="status" aria-live="polite" data-testid="list-announcer">
        {announcement(changes)}
      </p>
      <div className="section-head">
        <h2 id="h-detectors" ref={heading} tabIndex={-1}>
          Detector configurations
        </h2>
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
          const c = own(caught, row.name);
          const recent = caughtLastHour(c, now);
          return (
            <li key={row.name} className="card" data-testid="detector-row" data-name={row.name} data-version={entry?.version ?? ""}>
              <div className="card-main">
                <div className="card-title">
                  <h3>{row.name}</h3>
                  <span className={`badge badge-${row.state}`} data-testid="state-badge" data-state={row.state}>
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
                        // The confirmation replaces the focused Delete button: without this, focus fell to the page.
                        autoFocus
                        disabled={inFlight(row.change)}
                        onClick={() => {
                          setConfirming(null);
                          const base = deleteBase(row);
                          if (base) dispatch(applyRequested({ name: row.name, kind: "delete", config: null, reason: "deleted in the UI", ...base }));
                        }}
                      >
                        Delete {row.name}
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        onClick={() => {
                          returnFocus.current = row.name;
                          setConfirming(null);
                        }}
                      >
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <button
                      type="button"
                      className="secondary"
                      data-testid={`delete-${row.name}`}
                      disabled={inFlight(row.change)}
                      title={inFlight(row.change) ? "waiting for the server to answer the last change" : undefined}
                      onClick={() => setConfirming(row.name)}
                    >
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

/** A change the server has not answered yet: its row shows a version that may never exist. */
function inFlight(change: Change | null): boolean {
  return change !== null && change.state === "pending" && change.version === null;
}

/**
 * What a delete is based on: the version the server gave (the server's entry, or the stored
 * answer of our last change), never the row made up locally (regression: a rollback restored
 * "v4, description: mine", which the server never stored).
 */
export function deleteBase(row: ListRow): { baseVersion: number; previous: StoredConfig } | null {
  if (inFlight(row.change)) return null;
  const known = row.change?.state === "live" || row.change?.state === "pending" || row.change?.state === "unconfirmed" ? row.change : null;
  if (known && known.version !== null && (!row.server || row.server.version < known.version)) {
    const previous = known.stored ?? row.entry;
    return previous ? { baseVersion: known.version, previous: { ...previous, version: known.version } } : null;
  }
  return row.server ? { baseVersion: row.server.version, previous: row.server } : null;
}

/** One sentence for the list's single live region: the newest change and its state (badges are not live regions). */
function announcement(changes: Record<string, Change>): string {
  let latest: Change | null = null;
  for (const c of Object.values(changes)) if (!latest || c.seq > latest.seq) latest = c;
  return latest ? `${latest.name}: ${BADGE_TEXT[latest.state]}` : "";
}
