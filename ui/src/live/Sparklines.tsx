// Value against the expected band at each anomaly event, per affected series, newest series first.
import { memo } from "react";
import type { RootState } from "../app/store";
import { num } from "./format";
import type { SparkSeries } from "./liveSlice";
import { useFrameSelector } from "./useFrameSelector";

const selectSparks = (s: RootState) => s.live.sparks;

const Spark = memo(function Spark({ series }: { series: SparkSeries }) {
  const points = series.points;
  const last = points[points.length - 1];
  let body = null;
  if (points.length > 0) {
    const values = points.flatMap((p) => [p.v, p.lo, p.hi]).filter((x): x is number => x !== null);
    let min = Math.min(...values);
    let max = Math.max(...values);
    if (max === min) {
      max += 1;
      min -= 1;
    }
    const t0 = points[0]!.t;
    const t1 = last!.t;
    const x = (t: number) => (t1 === t0 ? 100 : 4 + ((t - t0) / (t1 - t0)) * 192);
    const y = (v: number) => 36 - ((v - min) / (max - min)) * 32;
    const banded = points.filter((p) => p.lo !== null && p.hi !== null);
    // One event (or all at one time): the band spans the width, so it reads as a band.
    const edges = (t: number) => (t1 === t0 ? [4, 196] : [x(t)]);
    const upper = banded.flatMap((p) => edges(p.t).map((e) => `${e.toFixed(1)},${y(p.hi!).toFixed(1)}`));
    const lower = [...banded].reverse().flatMap((p) => edges(p.t).reverse().map((e) => `${e.toFixed(1)},${y(p.lo!).toFixed(1)}`));
    body = (
      <>
        {banded.length > 0 && <polygon className="band" points={[...upper, ...lower].join(" ")} />}
        <polyline className="value" points={points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ")} />
        {points.map((p, i) => (
          <circle key={i} className={`dot-${p.sev}`} cx={x(p.t).toFixed(1)} cy={y(p.v).toFixed(1)} r="2" />
        ))}
      </>
    );
  }
  return (
    <div className="spark" data-key={series.key}>
      <div className="name" title={series.name}>
        {series.name}
      </div>
      <svg viewBox="0 0 200 40" preserveAspectRatio="none" role="img" aria-label={`anomalies of ${series.name}`}>
        {body}
      </svg>
      <div className="meta">
        {points.length} {points.length === 1 ? "event" : "events"}
        {last ? ` · last ${num(last.v)} vs [${num(last.lo)}, ${num(last.hi)}]` : ""}
      </div>
    </div>
  );
});

export function Sparklines() {
  const sparks = useFrameSelector(selectSparks);
  return (
    <div id="sparklines" className="sparklines">
      {sparks.map((s) => (
        <Spark key={s.key} series={s} />
      ))}
    </div>
  );
}
