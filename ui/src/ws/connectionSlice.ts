// The WebSocket's state as the header badge shows it.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";

export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "failed";

interface State {
  state: ConnectionState;
  text: string;
}

export const connectionSlice = createSlice({
  name: "connection",
  initialState: { state: "idle", text: "not connected" } as State,
  reducers: {
    connectionChanged(state, action: PayloadAction<State>) {
      state.state = action.payload.state;
      state.text = action.payload.text;
    },
  },
});

export const { connectionChanged } = connectionSlice.actions;
