// Hash routes (#/live, #/detectors, #/detectors/<name>, #/new), read only after #token= is gone.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";

export type Route = { view: "live" } | { view: "detectors" } | { view: "editor"; name: string | null };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "");
  if (path === "/new") return { view: "editor", name: null };
  const m = /^\/detectors\/(.+)$/.exec(path);
  if (m) {
    try {
      return { view: "editor", name: decodeURIComponent(m[1]!) };
    } catch {
      // A malformed escape (#/detectors/%E0) threw before the first render and on every hashchange.
      return { view: "detectors" };
    }
  }
  if (path === "/detectors") return { view: "detectors" };
  return { view: "live" };
}

export function routeHash(route: Route): string {
  if (route.view === "live") return "#/live";
  if (route.view === "detectors") return "#/detectors";
  return route.name === null ? "#/new" : `#/detectors/${encodeURIComponent(route.name)}`;
}

export const routeSlice = createSlice({
  name: "route",
  initialState: { route: { view: "live" } as Route },
  reducers: {
    navigated(state, action: PayloadAction<Route>) {
      state.route = action.payload;
    },
  },
});

export const { navigated } = routeSlice.actions;

/** What [`keepHashInSync`] needs of a store: the route, and a way to be told of changes. */
export interface RouteStore {
  getState(): { route: { route: Route } };
  subscribe(listener: () => void): () => void;
}

/**
 * Writes the hash when the route changes, and only then. (Regression: it wrote the hash on every
 * store change whose route differed from it, so an event dispatched between a click on a link
 * and the browser's `hashchange` put the old route back, and a busy live stream made the
 * Detectors tab unreachable.)
 */
export function keepHashInSync(store: RouteStore, location: { hash: string }): () => void {
  let last = store.getState().route.route;
  return store.subscribe(() => {
    const route = store.getState().route.route;
    if (route === last) return;
    last = route;
    const hash = routeHash(route);
    if (location.hash !== hash && !(hash === "#/live" && location.hash === "")) location.hash = hash;
  });
}
