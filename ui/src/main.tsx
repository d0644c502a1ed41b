// Entry point: takes the token out of the URL, builds the store, keeps the hash route in sync, renders.
import { createRoot } from "react-dom/client";
import { Provider } from "react-redux";
import { App } from "./app/App";
import { linkToken, readToken, tokenSet } from "./app/auth";
import { keepHashInSync, navigated, parseRoute } from "./app/route";
import { browserDeps, makeStore } from "./app/store";
import "./app/app.css";
import { browserUrl, type SocketLike } from "./ws/manager";

const store = makeStore(
  browserDeps({
    // The browser WebSocket has the same members; its handler types are only narrower in `this`.
    createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (handle) => window.clearTimeout(handle as number),
    random: Math.random,
    url: browserUrl,
    now: Date.now,
  }),
);

// The token leaves the fragment first; only then is the hash a route.
const token = readToken(location, history, sessionStorage);
store.dispatch(navigated(parseRoute(location.hash)));
window.addEventListener("hashchange", () => {
  // A #token= link opened in this tab while the app runs: take it like on load.
  if (/[#&]token=/.test(location.hash)) {
    // Another tenant's or user's token asks first: a crafted link must not switch silently.
    const fresh = linkToken(location, history, store.getState().auth.token, (q) => window.confirm(q));
    if (fresh) store.dispatch(tokenSet(fresh));
  }
  store.dispatch(navigated(parseRoute(location.hash)));
});
keepHashInSync(store, location);
if (token) store.dispatch(tokenSet(token));

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <Provider store={store}>
      <App />
    </Provider>,
  );
}
