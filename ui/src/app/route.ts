// Hash routes (#/live, #/detectors, #/detectors/<name>, #/new), read only after #token= is gone.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";

export type Route = { view: "live" } | { view: "detectors" } | { view: "editor"; name: string | null };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "");
  if (path === "/new") return { view: "editor", name: null };
  const m = /^\/detectors\/(.+)$/.exec(path);
  if (m) return { view: "editor", name: decodeURIComponent(m[1]!) };
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
