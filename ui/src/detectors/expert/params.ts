// Every detector kind with its parameters and defaults (aiops.example.toml, operators/src/detector/*),
// plus the pointers the expert form renders, so errors without a field can be listed at the top.
import type { JsonObject } from "../../api/types";

export interface ParamSpec {
  name: string;
  default: number | string;
  kind: "number" | "integer" | "input";
}

const input: ParamSpec = { name: "input", default: "value", kind: "input" };
const n = (name: string, d: number): ParamSpec => ({ name, default: d, kind: "number" });
const i = (name: string, d: number): ParamSpec => ({ name, default: d, kind: "integer" });

export const INPUTS = ["value", "delta", "rate"];

export const DETECTOR_KINDS: Record<string, ParamSpec[]> = {
  range: [input, n("tolerance", 0.05), n("half_life", 5000), i("warmup", 50), n("smooth", 1), n("noise_floor", 0)],
  mad: [input, i("window", 64), i("warmup", 16), n("band_sigma", 3), n("min_scale", 1e-9), n("relative_min_scale", 1e-4)],
  zscore: [input, n("alpha", 0.02), i("warmup", 30), n("band_sigma", 3), n("clip_sigma", 4), n("min_std", 1e-9), n("relative_min_std", 1e-4)],
  seasonal: [
    input,
    i("min_period", 4),
    i("max_period", 400),
    i("check_every", 64),
    n("min_correlation", 0.3),
    n("harmonic", 0.8),
    n("correlation_half_life", 2000),
    n("level_alpha", 0.05),
    n("season_alpha", 0.2),
    n("scale_alpha", 0.02),
    n("clip_sigma", 4),
    i("warmup", 100),
    n("band_sigma", 3),
    n("relative_min_scale", 1e-4),
  ],
  iforest: [i("window", 8), i("trees", 32), i("sample_size", 64), i("history", 1024), i("retrain_every", 512), i("warmup", 256)],
  sequence: [i("levels", 8), i("order", 2)],
  newcomer: [input, i("min_points", 8), i("handover", 100), n("offset", 3), n("clip_sigma", 4)],
  jump: [input, i("window", 5), i("confirm", 2), n("memory", 50), n("tail_memory", 1000), n("offset", 3), n("wander", 0), n("wander_memory", 300)],
  stuck: [input, i("min_points", 30), n("memory", 2000), n("offset", 3), n("alarm", 3)],
  residual: [
    input,
    n("alpha", 0.05),
    i("warmup", 30),
    n("memory", 2000),
    n("max_excess", 2.75),
    n("offset", 3),
    n("clip_sigma", 4),
    n("incident_sigma", 5),
    n("max_incident_share", 0.2),
    n("max_small_steps", 0.6),
    i("shift_points", 3),
    n("max_phi", 0.5),
  ],
  lstm: [i("hidden", 8), i("steps", 8), i("history", 512), i("warmup", 256), i("retrain_every", 5000)],
};

export const ENSEMBLE_METHODS = ["max", "mean", "min", "fisher"];
export const CALIBRATION_METHODS = ["envelope", "tail"];

export const CALIBRATION_PARAMS: ParamSpec[] = [n("half_life", 1000), i("warmup", 100), n("tolerance", 2), n("learn_cap", 3), n("tail", 0.02)];

export const ALERT_PARAMS: ParamSpec[] = [
  n("warning", 5),
  n("critical", 8),
  n("clear", 3),
  i("min_duration", 1),
  i("clear_after", 20),
  i("cooldown_ms", 0),
  n("reannounce", 3),
  i("young_points", 0),
  n("young_warning", 0),
];

function asObject(x: unknown): JsonObject {
  return typeof x === "object" && x !== null && !Array.isArray(x) ? (x as JsonObject) : {};
}

/** Every pointer the expert form has an input for, given the draft's config. */
export function expertPointers(config: JsonObject): Set<string> {
  const out = new Set<string>(["/name", "/reason", "/config", "/config/description", "/config/match/metric", "/config/features/alpha"]);
  for (const k of Object.keys(asObject(asObject(config.match).labels))) {
    out.add(`/config/match/labels/${k}`);
  }
  const detectors = Array.isArray(config.detectors) ? config.detectors : [];
  detectors.forEach((d, index) => {
    const obj = asObject(d);
    out.add(`/config/detectors/${index}`);
    out.add(`/config/detectors/${index}/kind`);
    const kind = typeof obj.kind === "string" ? obj.kind : "";
    for (const p of DETECTOR_KINDS[kind] ?? []) out.add(`/config/detectors/${index}/${p.name}`);
    for (const k of Object.keys(obj)) out.add(`/config/detectors/${index}/${k}`);
  });
  for (const p of ["method", "calibrate", "suppress_half_life", "calibration/method"]) out.add(`/config/ensemble/${p}`);
  for (const p of CALIBRATION_PARAMS) out.add(`/config/ensemble/calibration/${p.name}`);
  for (const p of ALERT_PARAMS) out.add(`/config/alert/${p.name}`);
  return out;
}
