// The live dashboard: one WebSocket to the gateway that served this page, the tenant's anomaly and
// drift channels, and a reconnect loop that resumes the anomaly stream from the last event seen
// (the gateway replays what was missed from history; see docs/protocol.md).
//
// Everything user-supplied (series names, labels, detector names) is written with textContent,
// never as HTML: labels come from whoever produces metrics.
"use strict";

const MAX_ROWS = 500;          // anomaly rows kept in the table
const MAX_DRIFT_ROWS = 200;
const MAX_SPARKLINES = 24;     // series shown with a sparkline
const SPARK_POINTS = 60;       // events kept per sparkline
const SEEN_IDS = 20000;        // event ids remembered to drop duplicates across reconnects
const TOKEN_KEY = "aiops.dashboard.token";
const SVG = "http://www.w3.org/2000/svg";

const state = {
  token: null,
  socket: null,
  attempt: 0,            // reconnect attempts since the last successful subscription
  retryTimer: null,
  lastAnomalyId: null,   // resume point for the anomalies channel
  seen: new Set(),
  seenOrder: [],
  counts: { events: 0, critical: 0, drift: 0 },
  series: new Map(),     // series key -> { name, points: [{t, v, lo, hi, sev}], last }
  connectionState: "idle",
  everLive: false,       // whether any connection with this token got subscribed
};

function $(id) { return document.getElementById(id); }

function setConnection(name, text) {
  state.connectionState = name;
  const el = $("connection");
  el.className = "state state-" + name;
  el.dataset.state = name;
  el.textContent = text;
}

// Shows who the token says we are. Display only: the gateway verifies the token itself.
function showIdentity(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    const expires = claims.exp ? new Date(claims.exp * 1000).toLocaleString() : "never";
    $("identity").textContent = "tenant " + claims.tenant + " · token expires " + expires;
  } catch (_) {
    $("identity").textContent = "";
  }
}

function readToken() {
  // A token in the fragment (#token=...) never reaches a server log; move it to session storage
  // and out of the address bar.
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(message) {
  $("board").hidden = true;
  $("token-form").hidden = false;
  const error = $("token-error");
  error.hidden = !message;
  error.textContent = message || "";
  setConnection("idle", "not connected");
}

function start(token) {
  state.token = token;
  showIdentity(token);
  $("token-form").hidden = true;
  $("board").hidden = false;
  connect();
}

function connect() {
  clearTimeout(state.retryTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/?token=" + encodeURIComponent(state.token);
  setConnection(state.attempt === 0 ? "connecting" : "reconnecting",
    state.attempt === 0 ? "connecting…" : "reconnecting…");
  let socket;
  try {
    socket = new WebSocket(url);
  } catch (e) {
    scheduleReconnect();
    return;
  }
  state.socket = socket;
  let subscribed = false;
  socket.onopen = () => {
    const anomalies = { type: "subscribe", id: 1, channel: "anomalies" };
    if (state.lastAnomalyId) anomalies.since = state.lastAnomalyId;
    socket.send(JSON.stringify(anomalies));
    socket.send(JSON.stringify({ type: "subscribe", id: 2, channel: "drift" }));
  };
  socket.onmessage = (message) => {
    let msg;
    try { msg = JSON.parse(message.data); } catch (_) { return; }
    switch (msg.type) {
      case "subscribed":
        if (msg.channel === "anomalies") {
          subscribed = true;
          state.everLive = true;
          state.attempt = 0;
          setConnection("live", "live");
        }
        break;
      case "event":
        if (msg.channel === "anomalies") addAnomaly(msg.event);
        else if (msg.channel === "drift") addDrift(msg.event);
        break;
      case "gap":
        // History no longer reaches back to where we were: say so in the stream.
        addNotice("events between " + (msg.since || "?") + " and now were missed: " + (msg.message || ""));
        break;
      case "error":
        // A token without the drift channel is fine; anything on anomalies is worth showing.
        if (msg.id !== 2) addNotice("gateway: " + msg.code + ": " + msg.message);
        break;
    }
  };
  socket.onclose = (close) => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (close.code === 4001) {
      askForToken("The token expired. Paste a new one.");
      return;
    }
    if (!subscribed && !state.everLive && state.attempt >= 3) {
      // Never got in: most likely a bad token (the refusal is an HTTP 401 the browser hides).
      setConnection("failed", "cannot connect: check the token");
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  state.attempt += 1;
  // Exponential back-off with jitter, so a fleet of dashboards does not reconnect in lockstep.
  const delay = Math.min(10000, 250 * 2 ** Math.min(state.attempt, 6)) * (0.5 + Math.random() / 2);
  if (state.connectionState !== "failed") {
    setConnection("reconnecting", "reconnecting in " + (delay / 1000).toFixed(1) + " s");
  }
  state.retryTimer = setTimeout(connect, delay);
}

function remember(id) {
  if (state.seen.has(id)) return false;
  state.seen.add(id);
  state.seenOrder.push(id);
  if (state.seenOrder.length > SEEN_IDS) state.seen.delete(state.seenOrder.shift());
  return true;
}

function seriesText(series) {
  if (!series) return "(all series)";
  const labels = Object.entries(series.labels || {}).map(([k, v]) => k + "=" + JSON.stringify(v));
  return series.name + (labels.length ? "{" + labels.join(",") + "}" : "");
}

function number(x) {
  if (typeof x !== "number" || !isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return x.toExponential(3);
  return x.toLocaleString(undefined, { maximumFractionDigits: 3 });
}

function time(ms) {
  return new Date(ms).toLocaleString();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

// Newest first; the oldest rows go once a table holds `max`.
function prepend(table, row, max) {
  const body = $(table).tBodies[0];
  body.insertBefore(row, body.firstChild);
  while (body.rows.length > max) body.deleteRow(body.rows.length - 1);
}

function addAnomaly(event) {
  if (!event || typeof event.id !== "string") return;
  state.lastAnomalyId = event.id;
  if (!remember(event.id)) return;
  state.counts.events += 1;
  if (event.severity === "critical") state.counts.critical += 1;

  const row = document.createElement("tr");
  row.dataset.id = event.id;
  row.className = "fresh";
  cell(row, time(event.timestamp));
  const sev = document.createElement("span");
  sev.className = "sev sev-" + event.severity;
  sev.textContent = event.severity + (event.escalation ? " ↑" : "");
  row.appendChild(document.createElement("td")).appendChild(sev);
  cell(row, seriesText(event.series), "series");
  cell(row, number(event.value), "num");
  const band = event.expected || {};
  cell(row, "[" + number(band.lower) + ", " + number(band.upper) + "]");
  cell(row, number(event.score), "num");
  cell(row, event.detector);
  cell(row, event.model_version);
  prepend("events", row, MAX_ROWS);
  $("events-empty").hidden = true;

  recordSeries(event);
  updateCounters(event.timestamp);
}

function addNotice(text) {
  const row = document.createElement("tr");
  row.className = "notice";
  const td = cell(row, text, "muted");
  td.colSpan = 8;
  prepend("events", row, MAX_ROWS);
}

function addDrift(event) {
  if (!event || typeof event.id !== "string" || !remember("drift:" + event.id)) return;
  state.counts.drift += 1;
  const row = document.createElement("tr");
  row.dataset.id = event.id;
  row.className = "fresh";
  cell(row, time(event.timestamp));
  cell(row, seriesText(event.series), "series");
  cell(row, event.feature);
  cell(row, event.test);
  cell(row, number(event.statistic) + " / " + number(event.threshold), "num");
  cell(row, event.model_version);
  prepend("drift", row, MAX_DRIFT_ROWS);
  $("drift-empty").hidden = true;
  updateCounters(null);
}

function recordSeries(event) {
  const key = event.series && event.series.key ? event.series.key : seriesText(event.series);
  let entry = state.series.get(key);
  if (!entry) {
    entry = { name: seriesText(event.series), points: [] };
  }
  state.series.delete(key); // re-insert: the map's order is most recently affected first, reversed
  state.series.set(key, entry);
  const band = event.expected || {};
  entry.points.push({ t: event.timestamp, v: event.value, lo: band.lower, hi: band.upper, sev: event.severity });
  entry.points.sort((a, b) => a.t - b.t);
  if (entry.points.length > SPARK_POINTS) entry.points.splice(0, entry.points.length - SPARK_POINTS);
  entry.dirty = true;
  scheduleSparklines();
}

let sparkPending = false;
function scheduleSparklines() {
  // A burst of events redraws once per frame, not once per event.
  if (sparkPending) return;
  sparkPending = true;
  requestAnimationFrame(() => { sparkPending = false; drawSparklines(); });
}

function drawSparklines() {
  const container = $("sparklines");
  const recent = Array.from(state.series.entries()).reverse().slice(0, MAX_SPARKLINES);
  const wanted = new Set(recent.map(([key]) => key));
  for (const el of Array.from(container.children)) {
    if (!wanted.has(el.dataset.key)) el.remove();
  }
  recent.forEach(([key, entry], index) => {
    let el = container.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!el) {
      el = document.createElement("div");
      el.className = "spark";
      el.dataset.key = key;
      entry.dirty = true;
    }
    if (container.children[index] !== el) container.insertBefore(el, container.children[index] || null);
    if (entry.dirty) {
      entry.dirty = false;
      el.replaceChildren(...sparkline(entry));
    }
  });
}

function sparkline(entry) {
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = entry.name;
  name.title = entry.name;
  const points = entry.points.filter((p) => isFinite(p.v));
  const meta = document.createElement("div");
  meta.className = "meta";
  const last = points[points.length - 1];
  meta.textContent = points.length + (points.length === 1 ? " event" : " events") +
    (last ? " · last " + number(last.v) + " vs [" + number(last.lo) + ", " + number(last.hi) + "]" : "");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 200 40");
  svg.setAttribute("preserveAspectRatio", "none");
  if (points.length > 0) {
    const values = points.flatMap((p) => [p.v, p.lo, p.hi]).filter((x) => isFinite(x));
    let min = Math.min(...values), max = Math.max(...values);
    if (max === min) { max += 1; min -= 1; }
    const t0 = points[0].t, t1 = points[points.length - 1].t;
    const x = (t) => (t1 === t0 ? 100 : 4 + ((t - t0) / (t1 - t0)) * 192);
    const y = (v) => 36 - ((v - min) / (max - min)) * 32;
    const banded = points.filter((p) => isFinite(p.lo) && isFinite(p.hi));
    if (banded.length > 0) {
      // One event (or all at one time): the band spans the width, so it reads as a band.
      const edges = (p) => (t1 === t0 ? [4, 196] : [x(p.t)]);
      const upper = banded.flatMap((p) => edges(p).map((e) => e.toFixed(1) + "," + y(p.hi).toFixed(1)));
      const lower = banded.slice().reverse()
        .flatMap((p) => edges(p).reverse().map((e) => e.toFixed(1) + "," + y(p.lo).toFixed(1)));
      const band = document.createElementNS(SVG, "polygon");
      band.setAttribute("class", "band");
      band.setAttribute("points", upper.concat(lower).join(" "));
      svg.appendChild(band);
    }
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", "value");
    line.setAttribute("points", points.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" "));
    svg.appendChild(line);
    for (const p of points) {
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("class", "dot-" + p.sev);
      dot.setAttribute("cx", x(p.t).toFixed(1));
      dot.setAttribute("cy", y(p.v).toFixed(1));
      dot.setAttribute("r", "2");
      svg.appendChild(dot);
    }
  }
  return [name, svg, meta];
}

function updateCounters(lastTimestamp) {
  $("count-events").textContent = state.counts.events;
  $("count-critical").textContent = state.counts.critical;
  $("count-series").textContent = state.series.size;
  $("count-drift").textContent = state.counts.drift;
  if (lastTimestamp != null) $("last-event").textContent = new Date(lastTimestamp).toLocaleTimeString();
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (token.split(".").length !== 3) {
      askForToken("That is not a JWT (three dot-separated parts).");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.attempt = 0;
    state.everLive = false;
    start(token);
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.retryTimer);
    const socket = state.socket;
    state.socket = null;
    if (socket) socket.close(1000);
    askForToken(null);
  });
  const token = readToken();
  if (token) start(token); else askForToken(null);
});
