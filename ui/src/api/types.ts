// Wire types of the gateway: WebSocket events and the configuration API's JSON shapes.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface SeriesRef {
  name: string;
  labels?: Record<string, string>;
  key?: string;
}

export interface AnomalyEvent {
  id: string;
  timestamp: number;
  severity: "warning" | "critical";
  escalation?: boolean;
  series?: SeriesRef;
  value: number;
  expected?: { lower: number; upper: number };
  score: number;
  detector: string;
  model_version: string;
  template?: string;
}

export interface DriftEvent {
  id: string;
  timestamp: number;
  series?: SeriesRef;
  feature: string;
  test: string;
  statistic: number;
  threshold: number;
  model_version: string;
}

export interface ConfigEvent {
  schema_version: number;
  type: "config_applied" | "config_rejected";
  id: string;
  tenant: string;
  name: string;
  version: number;
  deleted?: boolean;
  instance: string;
  at: number;
  reason?: string;
}

/** A configuration as the API stores it. `config` is kept as plain JSON: the UI edits any field. */
export interface StoredConfig {
  name: string;
  tenant: string;
  version: number;
  updated_by: string;
  updated_at: number;
  reason?: string | null;
  config: JsonObject;
}

export interface FieldError {
  pointer: string;
  message: string;
}

export interface HistoryResponse {
  versions: Array<Omit<StoredConfig, "config"> & { config: JsonObject | null }>;
  audit: Array<{ action: string; at: number; version: number; who: string; why?: string | null; seq: number }>;
}

export interface Preset {
  name: string;
  title?: string;
  catches: string;
  ignores: string;
  /** The running gateway names it `config`; the design notes call it `document`: accept both. */
  config?: JsonObject;
  document?: JsonObject;
}

export interface SeriesItem {
  key: string;
  name: string;
  labels: Record<string, string>;
  count?: number;
  points: Array<[number, number]>;
}

export interface SeriesResponse {
  data?: string;
  from?: number;
  to?: number;
  items: SeriesItem[];
  truncated?: boolean;
}

export interface PreviewSide {
  version: string;
  count: number;
  events: AnomalyEvent[];
  truncated: boolean;
  points_scored?: number;
}

export interface PreviewResponse {
  data?: string;
  from: number;
  to: number;
  draft: PreviewSide;
  live: PreviewSide | null;
  elapsed_ms?: number;
  series?: SeriesItem[];
}

export interface ApiError {
  status: number | "network";
  code?: string;
  message: string;
  errors?: FieldError[];
  current?: StoredConfig;
}
