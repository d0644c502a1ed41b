// A store wired like the browser's, with a fake WebSocket, a scriptable writer and recorded marks.
import type { HttpOutcome, WriteRequest } from "../src/api/http";
import type { StoredConfig } from "../src/api/types";
import { makeStore } from "../src/app/store";
import { fakeWsDeps } from "./helpers";

export function testStore() {
  const ws = fakeWsDeps();
  const requests: WriteRequest[] = [];
  const pending: Array<(o: HttpOutcome<StoredConfig | null>) => void> = [];
  const marks: string[] = [];
  let clock = 1000;
  const store = makeStore({
    ws: ws.deps,
    storage: null,
    optimistic: {
      writer: (_token, request) => {
        requests.push(request);
        return new Promise((resolve) => pending.push(resolve));
      },
      now: () => clock,
      mark: (name) => marks.push(name),
      storage: null,
    },
  });
  /** Answers the oldest request still waiting, then lets the listener run. */
  const answer = async (outcome: HttpOutcome<StoredConfig | null>) => {
    const resolve = pending.shift();
    if (!resolve) throw new Error("no request waiting");
    resolve(outcome);
    await flush();
  };
  return {
    store,
    ws,
    requests,
    marks,
    answer,
    setClock: (ms: number) => {
      clock = ms;
    },
  };
}

export async function flush() {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
