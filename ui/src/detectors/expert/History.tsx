// Every version with who, when and why, and a revert to any of them (a new version, If-Match guarded).
import { useHistoryQuery } from "../../api/api";
import type { StoredConfig } from "../../api/types";
import { useAppDispatch } from "../../app/hooks";
import { navigated } from "../../app/route";
import { time } from "../../live/format";
import { applyRequested } from "../../optimistic/listener";

export function History({ name, live }: { name: string; live: StoredConfig | null }) {
  const dispatch = useAppDispatch();
  const { data, error, isLoading } = useHistoryQuery(name);
  return (
    <section data-testid="history" aria-labelledby="h-history">
      <h3 id="h-history">History</h3>
      {isLoading && <p className="muted">Loading…</p>}
      {error && <p className="error">Could not load the history.</p>}
      <table className="compact">
        <thead>
          <tr>
            <th scope="col">version</th>
            <th scope="col">who</th>
            <th scope="col">when</th>
            <th scope="col">why</th>
            <th scope="col">
              <span className="sr-only">actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {[...(data?.versions ?? [])].reverse().map((v) => (
            <tr key={v.version}>
              <td>
                {v.version}
                {v.config === null ? " (deleted)" : ""}
              </td>
              <td>{v.updated_by}</td>
              <td>{time(v.updated_at)}</td>
              <td>{v.reason ?? ""}</td>
              <td>
                {v.config !== null && live && v.version !== live.version && (
                  <button
                    type="button"
                    className="secondary small"
                    data-testid={`revert-${v.version}`}
                    onClick={() => {
                      dispatch(
                        applyRequested({
                          name,
                          kind: "revert",
                          config: v.config,
                          reason: `revert to version ${v.version}`,
                          baseVersion: live.version,
                          previous: live,
                          revertTo: v.version,
                        }),
                      );
                      dispatch(navigated({ view: "detectors" }));
                    }}
                  >
                    Revert to {v.version}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
