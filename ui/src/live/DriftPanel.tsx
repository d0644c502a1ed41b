// Drift events (newest first).
import type { RootState } from "../app/store";
import { num, time } from "./format";
import { seriesText } from "./liveSlice";
import { useFrameSelector } from "./useFrameSelector";

const selectDrift = (s: RootState) => s.live.drift;

export function DriftPanel() {
  const drift = useFrameSelector(selectDrift);
  return (
    <section aria-labelledby="h-drift">
      <h2 id="h-drift">Drift</h2>
      <div className="table-wrap">
        <table id="drift">
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">series</th>
              <th scope="col">feature</th>
              <th scope="col">test</th>
              <th scope="col" className="num">statistic / threshold</th>
              <th scope="col">model version</th>
            </tr>
          </thead>
          <tbody>
            {drift.map((d) => (
              <tr key={d.id} data-id={d.id}>
                <td>{time(d.timestamp)}</td>
                <td className="series">{seriesText(d.series)}</td>
                <td>{d.feature}</td>
                <td>{d.test}</td>
                <td className="num">
                  {num(d.statistic)} / {num(d.threshold)}
                </td>
                <td>{d.model_version}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p id="drift-empty" className="muted" hidden={drift.length > 0}>
        No drift events.
      </p>
    </section>
  );
}
