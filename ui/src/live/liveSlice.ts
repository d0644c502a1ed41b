// The live stream's state: anomaly and drift rows (newest first, bounded), counters, sparkline
// series and, per configuration name, what it caught in the last hour.
import { createSlice, original, type PayloadAction } from "@reduxjs/toolkit";
import type { AnomalyEvent, DriftEvent } from "../api/types";
import { dict, own } from "../util/dict";

export const MAX_ROWS = 500;
export const MAX_DRIFT_ROWS = 200;
export const MAX_SPARKLINES = 24;
export const SPARK_POINTS = 60;
/** Distinct series remembered for the "series affected" counter; beyond it the count stops. */
export const MAX_SERIES_KEYS = 10000;
const MINUTE = 60000;

export type Row = { kind: "event"; event: AnomalyEvent } | { kind: "notice"; id: string; text: string };

export interface SparkPoint {
  t: number;
  v: number;
  lo: number | null;
  hi: number | null;
  sev: AnomalyEvent["severity"];
}

export interface SparkSeries {
  key: string;
  name: string;
  points: SparkPoint[];
}

export interface Caught {
  /** Events per minute bucket (ms of the minute's start, as the reception clock saw it). */
  minutes: Record<string, number>;
  last: { id: string; timestamp: number; severity: string; series: string } | null;
}

export interface LiveState {
  rows: Row[];
  drift: DriftEvent[];
  counts: { events: number; critical: number; drift: number };
  seriesKeys: Record<string, true>;
  seriesCount: number;
  /** Most recently affected first. */
  sparks: SparkSeries[];
  lastEventAt: number | null;
  caught: Record<string, Caught>;
  noticeSeq: number;
}

export const initialLiveState: LiveState = {
  rows: [],
  drift: [],
  counts: { events: 0, critical: 0, drift: 0 },
  // Keyed by series keys and template names from the stream: no prototype (see util/dict).
  seriesKeys: dict<true>(),
  seriesCount: 0,
  sparks: [],
  lastEventAt: null,
  caught: dict<Caught>(),
  noticeSeq: 0,
};

export function seriesText(series: AnomalyEvent["series"]): string {
  if (!series) return "(all series)";
  const labels = Object.entries(series.labels ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return series.name + (labels.length ? `{${labels.join(",")}}` : "");
}

function finite(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

export const liveSlice = createSlice({
  name: "live",
  initialState: initialLiveState,
  reducers: {
    /** `at` is the reception time (the caller's clock), so the reducer stays pure. */
    anomalyReceived(state, action: PayloadAction<{ event: AnomalyEvent; at: number }>) {
      const { event, at } = action.payload;
      // The WebSocket manager drops replays by id already; this guards rows still on screen.
      // Work on the plain arrays, not the drafts: touching each draft row would cost a proxy per
      // row, and a burst of events goes through here once per event.
      const rows = original(state.rows) ?? state.rows;
      if (rows.some((r) => r.kind === "event" && r.event.id === event.id)) return;
      state.rows = [{ kind: "event", event }, ...rows.slice(0, MAX_ROWS - 1)];
      state.counts.events += 1;
      if (event.severity === "critical") state.counts.critical += 1;
      if (state.lastEventAt === null || event.timestamp >= state.lastEventAt) state.lastEventAt = event.timestamp;

      const key = event.series?.key ?? seriesText(event.series);
      if (!own(state.seriesKeys, key) && state.seriesCount < MAX_SERIES_KEYS) {
        state.seriesKeys[key] = true;
        state.seriesCount += 1;
      }
      const sparks = original(state.sparks) ?? state.sparks;
      const index = sparks.findIndex((s) => s.key === key);
      const before = index >= 0 ? sparks[index]! : { key, name: seriesText(event.series), points: [] };
      let points = before.points;
      const v = finite(event.value);
      if (v !== null) {
        const point: SparkPoint = {
          t: event.timestamp,
          v,
          lo: finite(event.expected?.lower),
          hi: finite(event.expected?.upper),
          sev: event.severity,
        };
        points = [...points, point].sort((a, b) => a.t - b.t).slice(-SPARK_POINTS);
      }
      const others = index >= 0 ? sparks.filter((_, i) => i !== index) : sparks;
      state.sparks = [{ ...before, points }, ...others].slice(0, MAX_SPARKLINES);

      if (event.template) {
        const caught = own(state.caught, event.template) ?? { minutes: {}, last: null };
        const minute = Math.floor(at / MINUTE) * MINUTE;
        caught.minutes[String(minute)] = (caught.minutes[String(minute)] ?? 0) + 1;
        for (const m of Object.keys(caught.minutes)) {
          if (Number(m) <= minute - 60 * MINUTE) delete caught.minutes[m];
        }
        caught.last = { id: event.id, timestamp: event.timestamp, severity: event.severity, series: seriesText(event.series) };
        state.caught[event.template] = caught;
      }
    },
    driftReceived(state, action: PayloadAction<DriftEvent>) {
      const event = action.payload;
      if ((original(state.drift) ?? state.drift).some((d) => d.id === event.id)) return;
      state.drift.unshift(event);
      if (state.drift.length > MAX_DRIFT_ROWS) state.drift.length = MAX_DRIFT_ROWS;
      state.counts.drift += 1;
    },
    noticeAdded(state, action: PayloadAction<string>) {
      state.noticeSeq += 1;
      const rows = original(state.rows) ?? state.rows;
      state.rows = [{ kind: "notice", id: `notice-${state.noticeSeq}`, text: action.payload }, ...rows.slice(0, MAX_ROWS - 1)];
    },
  },
});

export const { anomalyReceived, driftReceived, noticeAdded } = liveSlice.actions;

/** Events a configuration caught in the hour before `now`. */
export function caughtLastHour(caught: Caught | undefined, now: number): number {
  if (!caught) return 0;
  let total = 0;
  for (const [m, n] of Object.entries(caught.minutes)) if (Number(m) > now - 60 * MINUTE) total += n;
  return total;
}
