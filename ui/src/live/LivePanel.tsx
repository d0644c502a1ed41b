// The live view: counters, sparklines and the anomaly stream (newest first).
import { memo } from "react";
import type { RootState } from "../app/store";
import { clock, num, time } from "./format";
import { seriesText, type Row } from "./liveSlice";
import { Sparklines } from "./Sparklines";
import { useFrameSelector } from "./useFrameSelector";

const selectRows = (s: RootState) => s.live.rows;
const selectCounts = (s: RootState) => s.live.counts;
const selectSeriesCount = (s: RootState) => s.live.seriesCount;
const selectLast = (s: RootState) => s.live.lastEventAt;

const EventRow = memo(function EventRow({ row }: { row: Row }) {
  if (row.kind === "notice") {
    return (
      <tr className="notice">
        <td colSpan={8} className="muted">
          {row.text}
        </td>
      </tr>
    );
  }
  const e = row.event;
  return (
    <tr data-id={e.id}>
      <td>{time(e.timestamp)}</td>
      <td>
        <span className={`sev sev-${e.severity}`}>
          {e.severity}
          {e.escalation ? " ↑" : ""}
        </span>
      </td>
      <td className="series">{seriesText(e.series)}</td>
      <td className="num">{num(e.value)}</td>
      <td>
        [{num(e.expected?.lower)}, {num(e.expected?.upper)}]
      </td>
      <td className="num">{num(e.score)}</td>
      <td>{e.detector}</td>
      <td>{e.model_version}</td>
    </tr>
  );
});

export function Counters({ onForget }: { onForget: () => void }) {
  const counts = useFrameSelector(selectCounts);
  const seriesCount = useFrameSelector(selectSeriesCount);
  const last = useFrameSelector(selectLast);
  return (
    <section className="counters" aria-label="counters">
      <div>
        <span id="count-events">{counts.events}</span>
        <small>anomaly events</small>
      </div>
      <div>
        <span id="count-critical">{counts.critical}</span>
        <small>critical</small>
      </div>
      <div>
        <span id="count-series">{seriesCount}</span>
        <small>series affected</small>
      </div>
      <div>
        <span id="count-drift">{counts.drift}</span>
        <small>drift events</small>
      </div>
      <div>
        <span id="last-event">{last === null ? "–" : clock(last)}</span>
        <small>last event</small>
      </div>
      <div className="actions">
        <button id="forget-token" type="button" className="secondary" onClick={onForget}>
          Change token
        </button>
      </div>
    </section>
  );
}

export function LivePanel() {
  const rows = useFrameSelector(selectRows);
  const hasEvents = rows.some((r) => r.kind === "event");
  return (
    <>
      <section aria-labelledby="h-series">
        <h2 id="h-series">Affected series</h2>
        <p className="muted">Value (line) against the expected band (shaded) at each of the series&apos; anomaly events, newest series first.</p>
        <Sparklines />
      </section>
      <section aria-labelledby="h-stream">
        <h2 id="h-stream">Anomaly stream</h2>
        <div className="table-wrap">
          <table id="events">
            <thead>
              <tr>
                <th scope="col">time</th>
                <th scope="col">severity</th>
                <th scope="col">series</th>
                <th scope="col" className="num">value</th>
                <th scope="col">expected band</th>
                <th scope="col" className="num">score</th>
                <th scope="col">detector</th>
                <th scope="col">model version</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <EventRow key={r.kind === "event" ? r.event.id : r.id} row={r} />
              ))}
            </tbody>
          </table>
        </div>
        <p id="events-empty" className="muted" hidden={hasEvents}>
          Waiting for anomaly events…
        </p>
      </section>
    </>
  );
}
