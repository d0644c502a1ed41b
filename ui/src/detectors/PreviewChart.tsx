// Recent data of one series as a line, with the points a draft would have flagged marked on it.
import type { AnomalyEvent, SeriesItem } from "../api/types";
import { extent } from "../api/shapes";
import { num } from "../live/format";

export function PreviewChart({ series, events }: { series: SeriesItem; events: AnomalyEvent[] }) {
  const pts = series.points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
  const W = 600;
  const H = 160;
  if (pts.length === 0) return <p className="muted">No points of {series.name} in the range.</p>;
  const flagged = events.filter((e) => (e.series?.key ?? "") === series.key || (!e.series?.key && e.series?.name === series.name));
  const ts = pts.map((p) => p[0]);
  const vs = [...pts.map((p) => p[1]), ...flagged.map((e) => e.value).filter((v) => Number.isFinite(v))];
  const [t0, t1] = extent(ts);
  let [lo, hi] = extent(vs);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const x = (t: number) => (t1 === t0 ? W / 2 : 8 + ((t - t0) / (t1 - t0)) * (W - 16));
  const y = (v: number) => H - 8 - ((v - lo) / (hi - lo)) * (H - 16);
  return (
    <figure className="preview-chart" data-testid="preview-chart">
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${series.name}: ${flagged.length} points flagged by the draft`}>
        <polyline className="value" points={pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ")} />
        {flagged
          .filter((e) => e.timestamp >= t0 && e.timestamp <= t1)
          .map((e) => (
            // A tick through the flagged point: the chart stretches to its box, which would draw a
            // circle as an ellipse; a line with a non-scaling stroke stays a mark.
            <line
              key={e.id}
              className={`flag flag-${e.severity}`}
              x1={x(e.timestamp).toFixed(1)}
              x2={x(e.timestamp).toFixed(1)}
              y1={(y(e.value) - 7).toFixed(1)}
              y2={(y(e.value) + 7).toFixed(1)}
              vectorEffect="non-scaling-stroke"
            />
          ))}
      </svg>
      <figcaption>
        {series.name} · {flagged.length} flagged · range {num(lo)} – {num(hi)}
      </figcaption>
    </figure>
  );
}
