// The Redux store: slices, RTK Query, the WebSocket middleware and the optimistic listener.
import { combineReducers, configureStore, createListenerMiddleware, isAnyOf } from "@reduxjs/toolkit";
import { api } from "../api/api";
import { fetchWriter } from "../api/http";
import { draftSlice, draftStorageKey } from "../detectors/draftSlice";
import { liveSlice } from "../live/liveSlice";
import { createOptimisticListener, type OptimisticDeps } from "../optimistic/listener";
import { optimisticSlice } from "../optimistic/optimistic";
import { connectionSlice } from "../ws/connectionSlice";
import type { WsDeps } from "../ws/manager";
import { createWsMiddleware } from "../ws/middleware";
import { authSlice, tokenCleared, tokenSet, TOKEN_KEY } from "./auth";
import { routeSlice } from "./route";

export const rootReducer = combineReducers({
  auth: authSlice.reducer,
  connection: connectionSlice.reducer,
  live: liveSlice.reducer,
  optimistic: optimisticSlice.reducer,
  draft: draftSlice.reducer,
  route: routeSlice.reducer,
  [api.reducerPath]: api.reducer,
});

export type RootState = ReturnType<typeof rootReducer>;

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
      const draft = (listenerApi.getState() as RootState).draft.draft;
      if (draft && deps.storage) deps.storage.setItem(draftStorageKey(draft.key), JSON.stringify(draft));
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
