// Events come off the wire as JSON nobody checked: each is rebuilt here with the types the
// panels render (a `"severity": {}` made React throw, and the bad row stayed in state so the
// panel's "Try again" crashed again). Events without an id, or with a severity the UI does not
// know, are dropped.
import type { AnomalyEvent, ConfigEvent, DriftEvent, SeriesRef } from "../api/types";

type Obj = Record<string, unknown>;

function isObject(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A finite number, or null. */
export function finite(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/** A string to show: strings as they are, numbers and booleans as text, anything else empty. */
function text(x: unknown): string {
  if (typeof x === "string") return x;
  if (typeof x === "number" || typeof x === "boolean") return String(x);
  return "";
}

function series(x: unknown): SeriesRef | undefined {
  if (!isObject(x)) return undefined;
  const out: SeriesRef = { name: text(x.name) };
  if (isObject(x.labels)) {
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(x.labels)) labels[k] = text(v);
    out.labels = labels;
  }
  if (typeof x.key === "string") out.key = x.key;
  return out;
}

export function normalizeAnomaly(x: unknown): AnomalyEvent | null {
  if (!isObject(x) || typeof x.id !== "string" || !x.id) return null;
  if (x.severity !== "warning" && x.severity !== "critical") return null;
  const event: AnomalyEvent = {
    id: x.id,
    timestamp: finite(x.timestamp) ?? 0,
    severity: x.severity,
    value: finite(x.value) ?? Number.NaN,
    score: finite(x.score) ?? Number.NaN,
    detector: text(x.detector),
    model_version: text(x.model_version),
  };
  if (x.escalation === true) event.escalation = true;
  const s = series(x.series);
  if (s) event.series = s;
  if (isObject(x.expected)) {
    const lower = finite(x.expected.lower);
    const upper = finite(x.expected.upper);
    if (lower !== null && upper !== null) event.expected = { lower, upper };
  }
  if (typeof x.template === "string" && x.template) event.template = x.template;
  return event;
}

export function normalizeDrift(x: unknown): DriftEvent | null {
  if (!isObject(x) || typeof x.id !== "string" || !x.id) return null;
  const event: DriftEvent = {
    id: x.id,
    timestamp: finite(x.timestamp) ?? 0,
    feature: text(x.feature),
    test: text(x.test),
    statistic: finite(x.statistic) ?? Number.NaN,
    threshold: finite(x.threshold) ?? Number.NaN,
    model_version: text(x.model_version),
  };
  const s = series(x.series);
  if (s) event.series = s;
  return event;
}

export function normalizeConfig(x: unknown): ConfigEvent | null {
  if (!isObject(x) || typeof x.id !== "string" || !x.id) return null;
  if (x.type !== "config_applied" && x.type !== "config_rejected") return null;
  const version = finite(x.version);
  if (typeof x.name !== "string" || version === null || typeof x.instance !== "string") return null;
  const event: ConfigEvent = {
    schema_version: finite(x.schema_version) ?? 1,
    type: x.type,
    id: x.id,
    tenant: text(x.tenant),
    name: x.name,
    version,
    instance: x.instance,
    at: finite(x.at) ?? 0,
  };
  if (x.deleted === true) event.deleted = true;
  if (typeof x.reason === "string") event.reason = x.reason;
  return event;
}
