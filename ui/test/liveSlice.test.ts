import { describe, expect, it } from "vitest";
import {
  anomalyReceived,
  caughtLastHour,
  driftReceived,
  initialLiveState,
  liveSlice,
  MAX_ROWS,
  MAX_SPARKLINES,
  noticeAdded,
  seriesText,
  SPARK_POINTS,
  type LiveState,
} from "../src/live/liveSlice";
import { anomaly } from "./helpers";

const reduce = (state: LiveState, action: Parameters<typeof liveSlice.reducer>[1]) => liveSlice.reducer(state, action);
const T = 1_800_000_000_000;

describe("live stream reducer", () => {
  it("puts the newest event first", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a"), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("b"), at: T }));
    expect(s.rows.map((r) => (r.kind === "event" ? r.event.id : r.id))).toEqual(["b", "a"]);
  });

  it("drops a duplicate id still on screen and does not count it", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a"), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("a"), at: T }));
    expect(s.rows).toHaveLength(1);
    expect(s.counts.events).toBe(1);
  });

  it("keeps at most 500 rows, dropping the oldest", () => {
    let s = initialLiveState;
    for (let i = 0; i < MAX_ROWS + 7; i++) s = reduce(s, anomalyReceived({ event: anomaly(`e${i}`), at: T }));
    expect(s.rows).toHaveLength(MAX_ROWS);
    const last = s.rows[s.rows.length - 1]!;
    expect(last.kind === "event" && last.event.id).toBe("e7");
    expect(s.counts.events).toBe(MAX_ROWS + 7);
  });

  it("counts critical events and distinct series", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a", { severity: "critical" }), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("b", { series: { name: "mem", key: "k2" } }), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("c"), at: T }));
    expect(s.counts.critical).toBe(1);
    expect(s.seriesCount).toBe(2);
  });

  it("tracks the latest event time, not the latest arrival", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a", { timestamp: 50 }), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("b", { timestamp: 20 }), at: T }));
    expect(s.lastEventAt).toBe(50);
  });

  it("orders sparklines most recently affected first and bounds them", () => {
    let s = initialLiveState;
    for (let i = 0; i < MAX_SPARKLINES + 3; i++) {
      s = reduce(s, anomalyReceived({ event: anomaly(`e${i}`, { series: { name: `s${i}`, key: `k${i}` } }), at: T }));
    }
    s = reduce(s, anomalyReceived({ event: anomaly("again", { series: { name: "s5", key: "k5" } }), at: T }));
    expect(s.sparks).toHaveLength(MAX_SPARKLINES);
    expect(s.sparks[0]!.key).toBe("k5");
    expect(s.sparks[0]!.points).toHaveLength(2);
  });

  it("keeps sparkline points sorted by time and bounded", () => {
    let s = initialLiveState;
    for (let i = SPARK_POINTS + 5; i > 0; i--) s = reduce(s, anomalyReceived({ event: anomaly(`p${i}`, { timestamp: i }), at: T }));
    const pts = s.sparks[0]!.points;
    expect(pts).toHaveLength(SPARK_POINTS);
    expect(pts.map((p) => p.t)).toEqual([...pts.map((p) => p.t)].sort((a, b) => a - b));
    expect(pts[pts.length - 1]!.t).toBe(SPARK_POINTS + 5);
  });

  it("adds notices as rows without an event", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a"), at: T }));
    s = reduce(s, noticeAdded("gap"));
    expect(s.rows[0]).toMatchObject({ kind: "notice", text: "gap" });
    expect(s.counts.events).toBe(1);
  });

  it("dedupes and counts drift events, newest first", () => {
    const d = { id: "d1", timestamp: 1, feature: "value", test: "ks", statistic: 1, threshold: 0.5, model_version: "v" };
    let s = reduce(initialLiveState, driftReceived(d));
    s = reduce(s, driftReceived(d));
    s = reduce(s, driftReceived({ ...d, id: "d2" }));
    expect(s.drift.map((x) => x.id)).toEqual(["d2", "d1"]);
    expect(s.counts.drift).toBe(2);
  });

  it("counts what each configuration caught in the last hour", () => {
    let s = reduce(initialLiveState, anomalyReceived({ event: anomaly("a"), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("b", { template: "other" }), at: T }));
    s = reduce(s, anomalyReceived({ event: anomaly("c"), at: T + 30 * 60000 }));
    expect(caughtLastHour(s.caught.checkout, T + 30 * 60000)).toBe(2);
    expect(caughtLastHour(s.caught.checkout, T + 61 * 60000)).toBe(1);
    expect(s.caught.checkout!.last!.id).toBe("c");
    expect(caughtLastHour(s.caught.other, T)).toBe(1);
  });

  it("quotes label values so one cannot pose as another label", () => {
    // A value holding `",zone="b` must stay one label's value in the text.
    expect(seriesText({ name: "cpu", labels: { host: 'a",zone="b' } })).toBe('cpu{host="a\\",zone=\\"b"}');
    expect(seriesText(undefined)).toBe("(all series)");
  });
});
