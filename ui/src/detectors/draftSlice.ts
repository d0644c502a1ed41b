// The one draft the editor works on, shared by the guided, template and expert modes: switching
// modes never discards it, and it is saved per name in sessionStorage so a reload loses nothing.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { FieldError, JsonObject, JsonValue, StoredConfig } from "../api/types";
import { parsePointer, setAt } from "./pointer";

export type Mode = "guided" | "template" | "expert";
export type Choice = "spikes" | "drops" | "level" | "daily" | "creep";

export interface Draft {
  /** The stored name it edits, or null for a new configuration. */
  key: string | null;
  name: string;
  baseVersion: number | null;
  config: JsonObject;
  reason: string;
  mode: Mode;
  step: number;
  choices: Choice[];
  sensitivity: number;
  preset: string | null;
  errors: FieldError[];
  rawText: string;
  rawError: string | null;
}

export const DRAFT_PREFIX = "aiops.draft.";
/** Per tenant: a draft saved under one token must not open under another tenant's. */
export const draftStorageKey = (tenant: string, key: string | null): string =>
  `${DRAFT_PREFIX}${encodeURIComponent(tenant)}/${key ?? "+new"}`;

export const pretty = (value: JsonValue): string => JSON.stringify(value, null, 2);

export function emptyConfig(): JsonObject {
  return {
    description: "",
    match: { metric: "", labels: {} },
    detectors: [{ kind: "range" }, { kind: "mad" }],
    ensemble: { method: "max" },
    alert: { warning: 2, critical: 4, clear: 1 },
  };
}

export function newDraft(stored: StoredConfig | null): Draft {
  const config = stored ? (JSON.parse(JSON.stringify(stored.config)) as JsonObject) : emptyConfig();
  return {
    key: stored?.name ?? null,
    name: stored?.name ?? "",
    baseVersion: stored?.version ?? null,
    config,
    reason: "",
    mode: stored ? "expert" : "guided",
    step: 1,
    choices: ["spikes"],
    sensitivity: 3,
    preset: typeof config.preset === "string" ? config.preset : null,
    errors: [],
    rawText: pretty(config),
    rawError: null,
  };
}

export function isDraft(x: unknown): x is Draft {
  if (typeof x !== "object" || x === null) return false;
  const d = x as Record<string, unknown>;
  return typeof d.name === "string" && typeof d.config === "object" && d.config !== null && typeof d.mode === "string";
}

interface DraftState {
  draft: Draft | null;
}

export const draftSlice = createSlice({
  name: "draft",
  initialState: { draft: null } as DraftState,
  reducers: {
    draftOpened(state, action: PayloadAction<Draft>) {
      state.draft = action.payload;
    },
    draftClosed(state) {
      state.draft = null;
    },
    /** Edits one field by its pointer into the request body: /name, /reason or /config/... */
    fieldSet(state, action: PayloadAction<{ pointer: string; value: JsonValue | undefined }>) {
      const d = state.draft;
      if (!d) return;
      const { pointer, value } = action.payload;
      if (pointer === "/name") d.name = typeof value === "string" ? value : "";
      else if (pointer === "/reason") d.reason = typeof value === "string" ? value : "";
      else if (pointer === "/config") {
        if (value !== null && typeof value === "object" && !Array.isArray(value)) d.config = value;
      } else if (pointer.startsWith("/config/")) setAt(d.config, parsePointer(pointer).slice(1), value);
      // A field the user touched no longer has the server's complaint.
      d.errors = d.errors.filter((e) => e.pointer !== pointer);
      // The raw editor follows the form, unless it holds text that does not parse (never lose it).
      if (d.rawError === null) d.rawText = pretty(d.config);
    },
    rawEdited(state, action: PayloadAction<string>) {
      const d = state.draft;
      if (!d) return;
      d.rawText = action.payload;
      try {
        const parsed: unknown = JSON.parse(action.payload);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          d.rawError = "the configuration must be a JSON object";
          return;
        }
        d.config = parsed as JsonObject;
        d.rawError = null;
      } catch (e) {
        d.rawError = e instanceof Error ? e.message : "not JSON";
      }
    },
    modeSet(state, action: PayloadAction<Mode>) {
      if (state.draft) state.draft.mode = action.payload;
    },
    stepSet(state, action: PayloadAction<number>) {
      if (state.draft) state.draft.step = Math.max(1, Math.min(4, action.payload));
    },
    guidedSet(state, action: PayloadAction<{ choices?: Choice[]; sensitivity?: number }>) {
      const d = state.draft;
      if (!d) return;
      if (action.payload.choices) d.choices = action.payload.choices;
      if (action.payload.sensitivity !== undefined) d.sensitivity = action.payload.sensitivity;
    },
    presetChosen(state, action: PayloadAction<{ name: string; config: JsonObject }>) {
      const d = state.draft;
      if (!d) return;
      // The preset brings detectors, ensemble and alert; the user's matcher and description stay.
      const keep = { match: d.config.match, description: d.config.description };
      d.config = JSON.parse(JSON.stringify(action.payload.config)) as JsonObject;
      if (keep.match !== undefined && keep.match !== null) d.config.match = keep.match;
      if (typeof keep.description === "string" && keep.description) d.config.description = keep.description;
      d.config.preset = action.payload.name;
      d.preset = action.payload.name;
      d.rawText = pretty(d.config);
      d.rawError = null;
    },
    errorsSet(state, action: PayloadAction<FieldError[]>) {
      if (state.draft) state.draft.errors = action.payload;
    },
    baseVersionSet(state, action: PayloadAction<number | null>) {
      if (state.draft) state.draft.baseVersion = action.payload;
    },
  },
});

export const {
  draftOpened,
  draftClosed,
  fieldSet,
  rawEdited,
  modeSet,
  stepSet,
  guidedSet,
  presetChosen,
  errorsSet,
  baseVersionSet,
} = draftSlice.actions;
