// Looks up the tenant's series by metric and label globs; picking one fills the matcher.
import { useState } from "react";
import { errorStatus, useLazySeriesQuery } from "../api/api";
import type { JsonObject } from "../api/types";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { fieldSet } from "./draftSlice";

export function SeriesSearch() {
  const dispatch = useAppDispatch();
  const match = useAppSelector((s) => s.draft.draft?.config.match);
  const [search, result] = useLazySeriesQuery();
  const [searched, setSearched] = useState(false);
  const m: JsonObject = match && typeof match === "object" && !Array.isArray(match) ? match : {};
  const metric = typeof m.metric === "string" ? m.metric : "";
  const labels = m.labels && typeof m.labels === "object" && !Array.isArray(m.labels) ? m.labels : {};
  const go = () => {
    setSearched(true);
    void search({ metric: metric || "*", labels: Object.entries(labels).map(([k, v]) => [k, String(v)]), windowMs: 3600000 });
  };
  // 501: the gateway has no preview data; 404: a gateway from before the series endpoint.
  const status = result.error ? errorStatus(result.error) : null;
  return (
    <div className="series-search">
      <button type="button" className="secondary" data-testid="series-search" onClick={go}>
        Find matching series
      </button>
      <div aria-live="polite">
        {searched && result.isFetching && <p className="muted">Searching…</p>}
        {(status === 501 || status === 404) && <p className="muted">Series search is not available on this gateway (no preview data): type the metric and label globs by hand.</p>}
        {status !== null && status !== 501 && status !== 404 && <p className="error">Series search failed ({String(status)}).</p>}
        {result.data && !result.isFetching && (
          <>
            <p className="muted small">
              {result.data.items.length} series{result.data.truncated ? " (more not shown)" : ""}
            </p>
            <ul className="series-results">
              {result.data.items.map((item) => (
                <li key={item.key}>
                  <button
                    type="button"
                    className="link"
                    data-testid="series-result"
                    onClick={() => {
                      dispatch(fieldSet({ pointer: "/config/match/metric", value: item.name }));
                      dispatch(fieldSet({ pointer: "/config/match/labels", value: { ...item.labels } }));
                    }}
                  >
                    {item.name}
                    {Object.keys(item.labels).length > 0 &&
                      `{${Object.entries(item.labels)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(",")}}`}
                    {item.count !== undefined && <span className="muted"> · {item.count} points</span>}
                  </button>
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
    </div>
  );
}
