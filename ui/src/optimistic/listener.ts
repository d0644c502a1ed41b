// The optimistic updater's effects: sends the change, arms the 10 s confirmation timer, marks
// confirmations for the browser tests, routes a 422 back to the editor, and refetches the list
// when another writer's change is confirmed.
import { createAction, createListenerMiddleware, isAnyOf, type TypedStartListening } from "@reduxjs/toolkit";
import { api } from "../api/api";
import type { Writer, WriteRequest } from "../api/http";
import type { JsonObject, StoredConfig } from "../api/types";
import { navigated } from "../app/route";
import { draftClosed, draftStorageKey, errorsSet, modeSet } from "../detectors/draftSlice";
import {
  applyStarted,
  configEventReceived,
  confirmTimedOut,
  CONFIRM_TIMEOUT_MS,
  httpFailed,
  httpSucceeded,
  type ChangeKind,
  type OptimisticState,
} from "./optimistic";

export interface ApplyRequest {
  name: string;
  kind: ChangeKind;
  config: JsonObject | null;
  reason: string;
  baseVersion: number | null;
  previous: StoredConfig | null;
  revertTo?: number;
}

export const applyRequested = createAction<ApplyRequest>("optimistic/applyRequested");

export interface OptimisticDeps {
  writer: Writer;
  now(): number;
  mark(name: string): void;
  storage: Pick<Storage, "removeItem"> | null;
}

interface RootLike {
  auth: { token: string | null };
  optimistic: OptimisticState;
  api: ReturnType<typeof api.reducer>;
  draft: { draft: { key: string | null; name: string } | null };
}

const path = (name: string) => `/api/v1/detectors/${encodeURIComponent(name)}`;

export function requestFor(r: ApplyRequest): WriteRequest {
  const ifMatch: Record<string, string> = r.baseVersion === null ? {} : { "If-Match": `"${r.baseVersion}"` };
  switch (r.kind) {
    case "delete":
      return { method: "DELETE", path: path(r.name), headers: { ...ifMatch, "X-Change-Reason": r.reason } };
    case "revert":
      return { method: "POST", path: `${path(r.name)}/revert`, headers: ifMatch, body: { version: r.revertTo ?? 0, reason: r.reason } };
    case "upsert":
      if (r.baseVersion === null) {
        return { method: "PUT", path: path(r.name), headers: { "If-None-Match": "*" }, body: { config: r.config ?? {}, reason: r.reason } };
      }
      return { method: "PUT", path: path(r.name), headers: ifMatch, body: { config: r.config ?? {}, reason: r.reason } };
  }
}

export function createOptimisticListener(deps: OptimisticDeps) {
  const listener = createListenerMiddleware();
  const start = listener.startListening as TypedStartListening<RootLike>;

  start({
    actionCreator: applyRequested,
    effect: async (action, api_) => {
      const r = action.payload;
      api_.dispatch(applyStarted({ ...r, at: deps.now() }));
      const seq = api_.getState().optimistic.changes[r.name]?.seq ?? 0;
      // The timer runs from the click: a hung request warns the same way a silent pipeline does.
      const timer = setTimeout(() => api_.dispatch(confirmTimedOut({ name: r.name, seq })), CONFIRM_TIMEOUT_MS);
      const outcome = await deps.writer(api_.getState().auth.token, requestFor(r));
      if (outcome.ok) {
        const version =
          outcome.body && typeof outcome.body.version === "number" ? outcome.body.version : (r.baseVersion ?? 0) + 1;
        api_.dispatch(httpSucceeded({ name: r.name, seq, version, stored: outcome.body }));
        deps.storage?.removeItem(draftStorageKey(r.baseVersion === null ? null : r.name));
        deps.storage?.removeItem(draftStorageKey(r.name));
        api_.dispatch(api.util.invalidateTags(["Detectors", { type: "History", id: r.name }]));
        // The draft is saved now; the next edit starts from the new version, not a stale base.
        const draft = api_.getState().draft.draft;
        if (draft && (draft.key === r.name || (draft.key === null && draft.name === r.name))) api_.dispatch(draftClosed());
        return;
      }
      clearTimeout(timer);
      api_.dispatch(httpFailed({ name: r.name, seq, error: outcome.error }));
      if (outcome.error.status === 422) {
        // Back to the editor with each error at its field; the draft in the store is untouched.
        const draft = api_.getState().draft.draft;
        if (draft && (draft.name === r.name || draft.key === r.name)) {
          api_.dispatch(errorsSet(outcome.error.errors ?? []));
          api_.dispatch(modeSet("expert"));
          api_.dispatch(navigated({ view: "editor", name: draft.key }));
        }
      }
    },
  });

  // Confirmation time for the browser tests: click → config_applied, as a performance mark.
  start({
    predicate: (action) => isAnyOf(httpSucceeded, configEventReceived)(action),
    effect: (_action, api_) => {
      const before = api_.getOriginalState().optimistic.changes;
      for (const change of Object.values(api_.getState().optimistic.changes)) {
        if (change.state === "live" && before[change.name]?.state !== "live" && change.version !== null) {
          deps.mark(`aiops:confirmed:${change.name}@${change.version}`);
        }
      }
    },
  });

  // Another browser's change (or one made before this page loaded) refetches the list.
  start({
    actionCreator: configEventReceived,
    effect: (action, api_) => {
      const event = action.payload.event;
      if (event.type !== "config_applied") return;
      const list = api.endpoints.listDetectors.select()(api_.getState() as never).data;
      if (!list) return;
      const entry = list.find((e) => e.name === event.name);
      if (event.deleted ? entry !== undefined : !entry || entry.version < event.version) {
        api_.dispatch(api.util.invalidateTags(["Detectors"]));
      }
    },
  });

  return listener;
}
