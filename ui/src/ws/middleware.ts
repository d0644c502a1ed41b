// Connects the WebSocket manager to the store: starts/stops with the token and dispatches what arrives.
import { createAction, type Middleware } from "@reduxjs/toolkit";
import { tokenCleared, tokenSet } from "../app/auth";
import { anomalyReceived, driftReceived, noticeAdded } from "../live/liveSlice";
import { api as rtk } from "../api/api";
import { configEventReceived, confirmationsMissed } from "../optimistic/optimistic";
import { configRefusedSet, connectionChanged } from "./connectionSlice";
import { WsManager, type WsDeps } from "./manager";

export const wsStop = createAction("ws/stop");

export function createWsMiddleware(deps: WsDeps, now: () => number = Date.now): Middleware {
  return (api) => {
    const manager = new WsManager(deps, {
      state: (state, text) => api.dispatch(connectionChanged({ state, text })),
      anomaly: (event) => api.dispatch(anomalyReceived({ event, at: now() })),
      drift: (event) => api.dispatch(driftReceived(event)),
      config: (event) => api.dispatch(configEventReceived({ event, at: now() })),
      notice: (text) => api.dispatch(noticeAdded(text)),
      expired: () => api.dispatch(tokenCleared("The token expired. Paste a new one.")),
      configResync: () => {
        // The list shows what is stored now; changes still waiting say their confirmation may be lost.
        api.dispatch(confirmationsMissed());
        api.dispatch(rtk.util.invalidateTags(["Detectors"]));
      },
      configRefused: () => api.dispatch(configRefusedSet(true)),
    });
    return (next) => (action) => {
      const result = next(action);
      if (tokenSet.match(action)) {
        api.dispatch(configRefusedSet(false));
        manager.start(action.payload);
      }
      else if (tokenCleared.match(action) || wsStop.match(action)) {
        manager.stop();
        if (tokenCleared.match(action)) api.dispatch(connectionChanged({ state: "idle", text: "not connected" }));
      }
      return result;
    };
  };
}
