// The optimistic updater's effects: sends the change, arms the 10 s confirmation timer, marks
// confirmations for the browser tests, routes a 422 back to the editor, and refetches the list
// when another writer's change is confirmed.
import { createAction, createListenerMiddleware, isAnyOf, type TypedStartListening } from "@reduxjs/toolkit";
import { api } from "../api/api";
import type { Writer, WriteRequest } from "../api/http";
import { tokenCleared } from "../app/auth";
import { navigated } from "../app/route";
import { draftClosed, draftStorageKey, errorsSet, modeSet } from "../detectors/draftSlice";
import {
  applyStarted,
  configEventReceived,
  confirmTimedOut,
  CONFIRM_TIMEOUT_MS,
  httpFailed,
  httpSucceeded,
  type ApplyPayload,
  type OptimisticState,
} from "./optimistic";
import { own } from "../util/dict";

/** A change as the UI asks for it: the slice's payload without the time it started. */
export type ApplyRequest = Omit<ApplyPayload, "at">;

export const applyRequested = createAction<ApplyRequest>("optimistic/applyRequested");

export interface OptimisticDeps {
  writer: Writer;
  now(): number;
  mark(name: string): void;
  storage: Pick<Storage, "removeItem"> | null;
}

interface RootLike {
  auth: { token: string | null; claims: { tenant?: string } | null };
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

/** How a write ended, for the next write to the same name that waited for it. */
interface Settled {
  ok: boolean;
  /** The version the server gave (a delete's: base + 1). */
  version: number | null;
  deleted: boolean;
  /** The version the optimistic row showed while the write was in flight: a later write's base if it was made on that row. */
  guess: number;
}

export function createOptimisticListener(deps: OptimisticDeps) {
  const listener = createListenerMiddleware();
  const start = listener.startListening as TypedStartListening<RootLike>;
  // One chain per name: a second write waits for the first, so it is never based on a version
  // that does not exist yet (regression: a Delete clicked while an edit was in flight used the
  // edit's guessed version and rolled back to an entry the server never stored).
  const chains = new Map<string, Promise<Settled>>();

  start({
    actionCreator: applyRequested,
    effect: async (action, api_) => {
      const r = action.payload;
      api_.dispatch(applyStarted({ ...r, at: deps.now() }));
      const seq = own(api_.getState().optimistic.changes, r.name)?.seq ?? 0;
      // Only the newest change under a name may close the draft or send the user back to the editor.
      const current = () => own(api_.getState().optimistic.changes, r.name)?.seq === seq;
      // The timer runs from the click: a hung request warns the same way a silent pipeline does.
      const timer = setTimeout(() => api_.dispatch(confirmTimedOut({ name: r.name, seq })), CONFIRM_TIMEOUT_MS);
      const prior = chains.get(r.name);
      const run = (async (): Promise<Settled> => {
        let request = r;
        if (prior) {
          // A writer that threw must not wedge every later write to the name.
          const before = await prior.catch((): Settled | null => null);
          if (before?.ok && r.baseVersion === before.guess) {
            request = { ...r, baseVersion: before.deleted ? null : before.version };
          }
        }
        const guess = (request.baseVersion ?? 0) + 1;
        const outcome = await deps.writer(api_.getState().auth.token, requestFor(request));
        if (outcome.ok) {
          const version = outcome.body && typeof outcome.body.version === "number" ? outcome.body.version : guess;
          api_.dispatch(httpSucceeded({ name: r.name, seq, version, stored: outcome.body }));
          api_.dispatch(api.util.invalidateTags(["Detectors", { type: "History", id: r.name }]));
          if (current()) {
            const tenant = api_.getState().auth.claims?.tenant ?? "";
            deps.storage?.removeItem(draftStorageKey(tenant, request.baseVersion === null ? null : r.name));
            deps.storage?.removeItem(draftStorageKey(tenant, r.name));
            // The draft is saved now; the next edit starts from the new version, not a stale base.
            const draft = api_.getState().draft.draft;
            if (draft && (draft.key === r.name || (draft.key === null && draft.name === r.name))) api_.dispatch(draftClosed());
          }
          return { ok: true, version, deleted: r.kind === "delete", guess };
        }
        clearTimeout(timer);
        const error = outcome.error;
        api_.dispatch(httpFailed({ name: r.name, seq, error }));
        if (error.status !== 422) {
          // A conflict means the list is stale; after a network failure the write may have landed.
          api_.dispatch(api.util.invalidateTags(["Detectors", { type: "History", id: r.name }]));
        }
        if (error.status === 401) {
          // The token expired (or was revoked) while the page was open: ask for a new one.
          api_.dispatch(tokenCleared("The server refused the token (HTTP 401): it may have expired. Paste a new one."));
        } else if (error.status === 422 && current()) {
          // Back to the editor with each error at its field; the draft in the store is untouched.
          const draft = api_.getState().draft.draft;
          if (draft && (draft.name === r.name || draft.key === r.name)) {
            api_.dispatch(errorsSet(error.errors ?? []));
            api_.dispatch(modeSet("expert"));
            api_.dispatch(navigated({ view: "editor", name: draft.key }));
          }
        }
        return { ok: false, version: null, deleted: false, guess };
      })();
      chains.set(r.name, run);
      await run;
      if (chains.get(r.name) === run) chains.delete(r.name);
    },
  });

  // Confirmation time for the browser tests: click → config_applied, as a performance mark.
  start({
    predicate: (action) => isAnyOf(httpSucceeded, configEventReceived)(action),
    effect: (_action, api_) => {
      const before = api_.getOriginalState().optimistic.changes;
      for (const change of Object.values(api_.getState().optimistic.changes)) {
        if (change.state === "live" && own(before, change.name)?.state !== "live" && change.version !== null) {
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
