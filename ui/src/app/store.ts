// The Redux store: slices, RTK Query, the WebSocket middleware and the optimistic listener.
import { combineReducers, configureStore, createListenerMiddleware, isAnyOf, type UnknownAction } from "@reduxjs/toolkit";
import { api } from "../api/api";
import { fetchWriter } from "../api/http";
import { draftSlice, draftStorageKey } from "../detectors/draftSlice";
import { initialLiveState, liveSlice } from "../live/liveSlice";
import { createOptimisticListener, type OptimisticDeps } from "../optimistic/listener";
import { initialOptimisticState, optimisticSlice } from "../optimistic/optimistic";
import { connectionSlice } from "../ws/connectionSlice";
import type { WsDeps } from "../ws/manager";
import { createWsMiddleware } from "../ws/middleware";
import { authSlice, parseClaims, tokenCleared, tokenSet, TOKEN_KEY } from "./auth";
import { routeSlice } from "./route";

const slices = combineReducers({
  auth: authSlice.reducer,
  connection: connectionSlice.reducer,
  live: liveSlice.reducer,
  optimistic: optimisticSlice.reducer,
  draft: draftSlice.reducer,
  route: routeSlice.reducer,
  [api.reducerPath]: api.reducer,
});

export type RootState = ReturnType<typeof slices>;

/** Whether an action ends the current tenant's session: the token forgotten, or one for another tenant or user. */
export function leavesTenant(state: RootState | undefined, action: UnknownAction): boolean {
  if (tokenCleared.match(action)) return true;
  if (!tokenSet.match(action) || !state || state.auth.token === null) return false;
  const before = state.auth.claims;
  const after = parseClaims(action.payload);
  return before?.tenant !== after?.tenant || before?.sub !== after?.sub;
}

/**
 * The slices plus one rule: leaving a tenant drops everything that belongs to it (live rows,
 * changes and confirmations, the open draft), so nothing of one tenant shows under another's token.
 */
export const rootReducer = (state: Partial<RootState> | undefined, action: UnknownAction): RootState => {
  if (state?.auth && leavesTenant(state as RootState, action)) {
    state = { ...state, live: initialLiveState, optimistic: initialOptimisticState, draft: { draft: null } };
  }
  return slices(state, action);
};

export interface StoreDeps {
  ws: WsDeps;
  optimistic: OptimisticDeps;
  storage: Storage | null;
}

export function browserDeps(wsDeps: WsDeps): StoreDeps {
  return {
    ws: wsDeps,
    optimistic: {
      writer: fetchWriter,
      now: () => Date.now(),
      mark: (name) => performance.mark(name),
      storage: sessionStorage,
    },
    storage: sessionStorage,
  };
}

export function makeStore(deps: StoreDeps, preloadedState?: Partial<RootState>) {
  // Session storage follows the token and the draft, so a reload or a lost connection loses nothing.
  const persist = createListenerMiddleware();
  // The RTK Query cache is the tenant's too: drop it with the rest (see rootReducer).
  persist.startListening({
    predicate: (action, _state, before) => leavesTenant(before as RootState, action),
    effect: (_action, listenerApi) => {
      listenerApi.dispatch(api.util.resetApiState());
    },
  });
  persist.startListening({
    matcher: isAnyOf(tokenSet, tokenCleared),
    effect: (action) => {
      if (!deps.storage) return;
      if (tokenSet.match(action)) deps.storage.setItem(TOKEN_KEY, action.payload);
      else deps.storage.removeItem(TOKEN_KEY);
    },
  });
  persist.startListening({
    predicate: (action) => typeof action.type === "string" && action.type.startsWith("draft/") && action.type !== "draft/draftClosed",
    effect: (_action, listenerApi) => {
      const state = listenerApi.getState() as RootState;
      const draft = state.draft.draft;
      if (draft && deps.storage) deps.storage.setItem(draftStorageKey(state.auth.claims?.tenant ?? "", draft.key), JSON.stringify(draft));
    },
  });
  const optimistic = createOptimisticListener(deps.optimistic);
  return configureStore({
    reducer: rootReducer,
    preloadedState,
    middleware: (getDefault) =>
      getDefault({ serializableCheck: false, immutableCheck: false })
        .prepend(persist.middleware, optimistic.middleware)
        .concat(api.middleware, createWsMiddleware(deps.ws, deps.optimistic.now)),
  });
}

export type AppStore = ReturnType<typeof makeStore>;
export type AppDispatch = AppStore["dispatch"];
