// The API's JSON checked before the views use it: RTK Query hands over whatever the body holds,
// and a list that is not an array, labels that are not an object or a point that is not a pair
// of numbers crashed the view that trusted it. Bad entries are dropped, never half-kept.
import { normalizeAnomaly } from "../ws/normalize";
import type { AnomalyEvent, HistoryResponse, JsonObject, Preset, PreviewResponse, PreviewSide, SeriesItem, SeriesResponse, StoredConfig } from "./types";

type Obj = Record<string, unknown>;

function isObject(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function items(body: unknown): unknown[] {
  return isObject(body) && Array.isArray(body.items) ? body.items : [];
}

export function storedConfig(x: unknown): StoredConfig | null {
  if (!isObject(x) || typeof x.name !== "string" || !finite(x.version)) return null;
  return {
    name: x.name,
    tenant: typeof x.tenant === "string" ? x.tenant : "",
    version: x.version,
    updated_by: typeof x.updated_by === "string" ? x.updated_by : "",
    updated_at: finite(x.updated_at) ? x.updated_at : 0,
    reason: typeof x.reason === "string" ? x.reason : null,
    config: isObject(x.config) ? (x.config as JsonObject) : {},
  };
}

export function storedConfigs(body: unknown): StoredConfig[] {
  return items(body).map(storedConfig).filter((c): c is StoredConfig => c !== null);
}

export function presets(body: unknown): Preset[] {
  return items(body)
    .filter(isObject)
    .filter((p) => typeof p.name === "string")
    .map((p) => {
      const preset: Preset = {
        name: p.name as string,
        catches: typeof p.catches === "string" ? p.catches : "",
        ignores: typeof p.ignores === "string" ? p.ignores : "",
      };
      if (typeof p.title === "string") preset.title = p.title;
      if (isObject(p.config)) preset.config = p.config as JsonObject;
      if (isObject(p.document)) preset.document = p.document as JsonObject;
      return preset;
    });
}

export function seriesItem(x: unknown): SeriesItem | null {
  if (!isObject(x) || typeof x.name !== "string") return null;
  const labels: Record<string, string> = {};
  if (isObject(x.labels)) for (const [k, v] of Object.entries(x.labels)) if (typeof v === "string") labels[k] = v;
  const points: Array<[number, number]> = [];
  if (Array.isArray(x.points)) {
    for (const p of x.points) if (Array.isArray(p) && finite(p[0]) && finite(p[1])) points.push([p[0], p[1]]);
  }
  const item: SeriesItem = { key: typeof x.key === "string" ? x.key : x.name, name: x.name, labels, points };
  if (finite(x.count)) item.count = x.count;
  return item;
}

export function seriesResponse(body: unknown): SeriesResponse {
  const out: SeriesResponse = { items: items(body).map(seriesItem).filter((s): s is SeriesItem => s !== null) };
  if (isObject(body)) {
    if (typeof body.data === "string") out.data = body.data;
    if (finite(body.from)) out.from = body.from;
    if (finite(body.to)) out.to = body.to;
    if (body.truncated === true) out.truncated = true;
  }
  return out;
}

export function historyResponse(body: unknown): HistoryResponse {
  const b = isObject(body) ? body : {};
  const versions = (Array.isArray(b.versions) ? b.versions : []).flatMap((v) => {
    const c = storedConfig(isObject(v) ? { ...v, config: isObject(v.config) ? v.config : {} } : v);
    return c && isObject(v) ? [{ ...c, config: isObject(v.config) ? (v.config as JsonObject) : null }] : [];
  });
  const audit = (Array.isArray(b.audit) ? b.audit : []).filter(isObject).map((a) => ({
    action: typeof a.action === "string" ? a.action : "",
    at: finite(a.at) ? a.at : 0,
    version: finite(a.version) ? a.version : 0,
    who: typeof a.who === "string" ? a.who : "",
    why: typeof a.why === "string" ? a.why : null,
    seq: finite(a.seq) ? a.seq : 0,
  }));
  return { versions, audit };
}

/** Smallest and largest of many numbers without spreading them into arguments (a long series threw RangeError). */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function previewSide(x: unknown): PreviewSide | null {
  if (!isObject(x)) return null;
  const events = (Array.isArray(x.events) ? x.events : []).map(normalizeAnomaly).filter((e): e is AnomalyEvent => e !== null);
  const side: PreviewSide = {
    version: typeof x.version === "string" ? x.version : "",
    count: finite(x.count) ? x.count : events.length,
    events,
    truncated: x.truncated === true,
  };
  if (finite(x.points_scored)) side.points_scored = x.points_scored;
  return side;
}

export function previewResponse(body: unknown): PreviewResponse {
  const b = isObject(body) ? body : {};
  const out: PreviewResponse = {
    from: finite(b.from) ? b.from : 0,
    to: finite(b.to) ? b.to : 0,
    draft: previewSide(b.draft) ?? { version: "", count: 0, events: [], truncated: false },
    live: previewSide(b.live),
  };
  if (typeof b.data === "string") out.data = b.data;
  if (finite(b.elapsed_ms)) out.elapsed_ms = b.elapsed_ms;
  if (Array.isArray(b.series)) out.series = b.series.map(seriesItem).filter((s): s is SeriesItem => s !== null);
  return out;
}
