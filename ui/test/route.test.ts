import { describe, expect, it } from "vitest";
import { configureStore, createAction, createSlice } from "@reduxjs/toolkit";
import { keepHashInSync, navigated, parseRoute, routeSlice } from "../src/app/route";

const somethingElse = createAction("live/eventReceived");
const counter = createSlice({
  name: "counter",
  initialState: { n: 0 },
  reducers: {},
  extraReducers: (builder) => builder.addCase(somethingElse, (state) => void (state.n += 1)),
});

function setup(hash: string) {
  const store = configureStore({ reducer: { route: routeSlice.reducer, counter: counter.reducer } });
  const location = { hash };
  store.dispatch(navigated(parseRoute(hash)));
  keepHashInSync(store, location);
  return { store, location };
}

describe("the hash route", () => {
  it("is written when the route changes", () => {
    const { store, location } = setup("#/live");
    store.dispatch(navigated({ view: "detectors" }));
    expect(location.hash).toBe("#/detectors");
    store.dispatch(navigated({ view: "editor", name: "checkout latency" }));
    expect(location.hash).toBe("#/detectors/checkout%20latency");
  });

  it("is not put back by other actions between a click on a link and hashchange", () => {
    const { store, location } = setup("#/live");
    // The browser changed the hash (a click on the Detectors tab); its hashchange is queued
    // behind an anomaly event.
    location.hash = "#/detectors";
    store.dispatch(somethingElse());
    expect(location.hash).toBe("#/detectors");
    store.dispatch(navigated(parseRoute(location.hash)));
    expect(store.getState().route.route).toEqual({ view: "detectors" });
  });

  it("leaves an empty hash alone for the live view", () => {
    // The page opened without a hash shows the live view; neither another action nor a
    // navigation to the live view it already shows may add "#/live" to the address.
    const { store, location } = setup("");
    store.dispatch(somethingElse());
    expect(location.hash).toBe("");
    store.dispatch(navigated({ view: "live" }));
    expect(location.hash).toBe("");
  });
});
