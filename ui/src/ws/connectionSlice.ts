// The WebSocket's state as the header badge shows it.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";

export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "failed";

interface State {
  state: ConnectionState;
  text: string;
  /** The gateway refused the config channel to this token: no change will ever be confirmed. */
  configRefused?: boolean;
}

export const connectionSlice = createSlice({
  name: "connection",
  initialState: { state: "idle", text: "not connected" } as State,
  reducers: {
    connectionChanged(state, action: PayloadAction<Pick<State, "state" | "text">>) {
      state.state = action.payload.state;
      state.text = action.payload.text;
    },
    configRefusedSet(state, action: PayloadAction<boolean>) {
      state.configRefused = action.payload;
    },
  },
});

export const { connectionChanged, configRefusedSet } = connectionSlice.actions;
