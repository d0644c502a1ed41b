// What the guided wizard's answers mean as detectors and alert thresholds.
import type { JsonObject, JsonValue } from "../../api/types";
import type { Choice } from "../draftSlice";

export const CHOICES: Array<{ id: Choice; label: string; hint: string }> = [
  { id: "spikes", label: "Spikes", hint: "sudden short jumps up" },
  { id: "drops", label: "Drops", hint: "sudden short falls" },
  { id: "level", label: "Level shifts", hint: "the series settles at a new level" },
  { id: "daily", label: "Broken daily pattern", hint: "the day no longer looks like other days" },
  { id: "creep", label: "Slow creep", hint: "a gradual rise towards a limit" },
];

/*
 * The mapping, chosen from what each detector catches (docs/detection.md):
 * - spikes, drops → range (beyond the recently covered range) + mad (robust distance from the
 *   rolling median); both are two-sided, so one pair serves either answer.
 * - level shifts  → range over an EWMA of the value (smooth 0.1, tolerance 0.1): sustained shifts
 *   whose single points stay inside the raw range.
 * - daily pattern → seasonal (Holt-Winters with period search).
 * - slow creep    → range over a slower EWMA (smooth 0.05) + zscore of the change ("delta" input):
 *   a drift that never jumps still moves the smoothed level and the step statistics.
 * Duplicates are dropped; nothing chosen falls back to range + mad.
 * The two ranges carry the built-in default's noise floors (docs/detection.md, "The noise floors"):
 * a new extreme must beat the old by a multiple of the series' point-to-point noise, so a noisy
 * series does not page on every record it sets.
 */
const RAW_RANGE: JsonObject = { kind: "range", noise_floor: 1.65, half_life: 20000, warmup: 20 };
const LEVEL_RANGE: JsonObject = { kind: "range", smooth: 0.1, tolerance: 0.1, noise_floor: 1.5 };

export function detectorsFor(choices: Choice[]): JsonObject[] {
  const out: JsonObject[] = [];
  const add = (d: JsonObject) => {
    if (!out.some((o) => JSON.stringify(o) === JSON.stringify(d))) out.push(d);
  };
  if (choices.includes("spikes") || choices.includes("drops")) {
    add(RAW_RANGE);
    add({ kind: "mad" });
  }
  if (choices.includes("level")) add(LEVEL_RANGE);
  if (choices.includes("daily")) add({ kind: "seasonal" });
  if (choices.includes("creep")) {
    add({ kind: "range", smooth: 0.05 });
    add({ kind: "zscore", input: "delta" });
  }
  if (out.length === 0) {
    add(RAW_RANGE);
    add({ kind: "mad" });
  }
  return out;
}

/**
 * Sensitivity 1 (fewer alerts) … 5 (more alerts) as calibrated-score thresholds; 3 is the built-in
 * default (warning 2, critical 4). `clear` is half the warning so an incident does not flap; a
 * series' first 1,440 points need twice the warning at first, falling to it, as in the default.
 */
export function alertFor(sensitivity: number): JsonObject {
  const table: Array<[number, number]> = [
    [4, 8],
    [3, 6],
    [2, 4],
    [1.5, 3],
    [1, 2],
  ];
  const [warning, critical] = table[Math.max(1, Math.min(5, Math.round(sensitivity))) - 1]!;
  return {
    warning,
    critical,
    clear: warning / 2,
    min_duration: 1,
    clear_after: 20,
    cooldown_ms: 0,
    reannounce: 3,
    young_points: 1440,
    young_warning: 2 * warning,
  };
}

/** The calibrated ensemble the guided mode always uses, so thresholds mean the same for any mix. */
export const GUIDED_ENSEMBLE: JsonValue = { method: "max", calibrate: true, suppress_half_life: 50 };
