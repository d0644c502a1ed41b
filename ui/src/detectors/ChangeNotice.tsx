// What happened to a change that did not simply go live: conflict (409), failure, rejection, or no confirmation yet.
import type { Change } from "../optimistic/optimistic";
import { canSeeConfig } from "../app/auth";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { applyRequested } from "../optimistic/listener";
import { changeDismissed } from "../optimistic/optimistic";
import { pretty } from "./draftSlice";

export function ChangeNotice({ change }: { change: Change }) {
  const dispatch = useAppDispatch();
  const blind = useAppSelector((s) => s.connection.configRefused === true || !canSeeConfig(s.auth.claims));
  const retry = (baseVersion: number | null) =>
    dispatch(
      applyRequested({
        name: change.name,
        kind: change.kind,
        config: change.config,
        reason: change.reason,
        baseVersion,
        previous: change.previous,
        revertTo: change.revertTo,
      }),
    );
  const dismiss = (
    <button type="button" className="link" onClick={() => dispatch(changeDismissed(change.name))}>
      Dismiss
    </button>
  );
  if (change.state === "conflict" && change.error) {
    const current = change.error.current;
    return (
      <div className="notice-box conflict" data-testid="conflict" role="alert">
        <p>
          <strong>Not applied:</strong>{" "}
          {current
            ? `changed by ${current.updated_by} to version ${current.version}`
            : change.error.message}
          . Your change was rolled back; it is kept in the editor.
        </p>
        {current && (
          <details open>
            <summary>Their configuration (version {current.version})</summary>
            <pre className="json" tabIndex={0} aria-label="their configuration">{pretty(current.config)}</pre>
          </details>
        )}
        <div className="row-actions">
          {current && (
            <button type="button" data-testid="reapply" onClick={() => retry(current.version)}>
              Reapply my change on top
            </button>
          )}
          {dismiss}
        </div>
      </div>
    );
  }
  if (change.state === "failed") {
    const why = change.rejected
      ? `a pipeline rejected version ${change.version ?? "?"}: ${change.rejected}`
      : change.error?.status === 422
        ? "the server refused the document; fix the fields marked in the editor"
        : `${change.error?.status === "network" ? "network failure" : `HTTP ${change.error?.status ?? "?"}`}: ${change.error?.message ?? ""}`;
    const retryable = !change.rejected && change.error?.status !== 422;
    return (
      <div className="notice-box failed" role="alert">
        <p>
          <strong>Not applied:</strong> {why}
        </p>
        <div className="row-actions">
          {retryable && (
            <button type="button" onClick={() => retry(change.baseVersion)}>
              Retry
            </button>
          )}
          {dismiss}
        </div>
      </div>
    );
  }
  if (change.state === "unconfirmed") {
    const why =
      change.version === null
        ? "the server has not answered yet; it may still go live."
        : blind
          ? `version ${change.version} is stored, but this token cannot see confirmations (no config channel).`
          : change.missed
            ? `version ${change.version} is stored; its confirmation may have been missed while the connection was down.`
            : `no pipeline confirmed version ${change.version} yet; it may still go live.`;
    return (
      <div className="notice-box warn" role="status" data-testid="unconfirmed">
        <p>{why}</p>
        <div className="row-actions">{dismiss}</div>
      </div>
    );
  }
  if (change.state === "live" && change.rejected) {
    return (
      <div className="notice-box warn" role="status" data-testid="partly-rejected">
        <p>
          Live, but a pipeline rejected version {change.version ?? "?"}: {change.rejected}
        </p>
        <div className="row-actions">{dismiss}</div>
      </div>
    );
  }
  return null;
}
