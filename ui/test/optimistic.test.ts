import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api } from "../src/api/api";
import { tokenSet } from "../src/app/auth";
import { draftOpened, newDraft } from "../src/detectors/draftSlice";
import { applyRequested, requestFor } from "../src/optimistic/listener";
import {
  configEventReceived,
  CONFIRM_TIMEOUT_MS,
  initialOptimisticState,
  mergeList,
  optimisticSlice,
  applyStarted,
  httpSucceeded,
} from "../src/optimistic/optimistic";
import { applied, stored } from "./helpers";
import { flush, testStore } from "./store";

const draftConfig = { match: { metric: "lat*" }, detectors: [{ kind: "mad" }], alert: { warning: 3 } };

function edit(t: ReturnType<typeof testStore>, base = stored("checkout", 3)) {
  t.store.dispatch(
    applyRequested({ name: "checkout", kind: "upsert", config: draftConfig, reason: "tune", baseVersion: base.version, previous: base }),
  );
}

const change = (t: ReturnType<typeof testStore>) => t.store.getState().optimistic.changes.checkout!;
const rows = (t: ReturnType<typeof testStore>, server = [stored("checkout", 3)]) => mergeList(server, t.store.getState().optimistic.changes);

describe("optimistic updater", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("shows the new config at once as pending and sends PUT with If-Match", () => {
    const t = testStore();
    edit(t);
    expect(change(t).state).toBe("pending");
    expect(rows(t)[0]).toMatchObject({ state: "pending", entry: { version: 4, config: draftConfig } });
    expect(t.requests[0]).toEqual({
      method: "PUT",
      path: "/api/v1/detectors/checkout",
      headers: { "If-Match": '"3"' },
      body: { config: draftConfig, reason: "tune" },
    });
  });

  it("creates with If-None-Match: * when there is no base version", () => {
    expect(requestFor({ name: "n", kind: "upsert", config: {}, reason: "", baseVersion: null, previous: null })).toMatchObject({
      method: "PUT",
      headers: { "If-None-Match": "*" },
    });
  });

  it("builds delete and revert requests with If-Match", () => {
    expect(requestFor({ name: "n", kind: "delete", config: null, reason: "bye", baseVersion: 2, previous: null })).toEqual({
      method: "DELETE",
      path: "/api/v1/detectors/n",
      headers: { "If-Match": '"2"', "X-Change-Reason": "bye" },
    });
    expect(requestFor({ name: "n", kind: "revert", config: {}, reason: "back", baseVersion: 5, previous: null, revertTo: 2 })).toEqual({
      method: "POST",
      path: "/api/v1/detectors/n/revert",
      headers: { "If-Match": '"5"' },
      body: { version: 2, reason: "back" },
    });
  });

  it("stays pending after the HTTP answer until config_applied for that version", async () => {
    const t = testStore();
    edit(t);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4, { config: draftConfig }) });
    expect(change(t)).toMatchObject({ state: "pending", version: 4 });
    t.store.dispatch(configEventReceived({ event: applied("checkout", 3), at: 1200 }));
    expect(change(t).state).toBe("pending");
    t.setClock(1500);
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4), at: 1500 }));
    expect(change(t)).toMatchObject({ state: "live", confirmedAt: 1500, elapsedMs: 500 });
    expect(t.marks).toEqual(["aiops:confirmed:checkout@4"]);
  });

  it("closes the saved draft so the next edit starts from the new version", async () => {
    const t = testStore();
    t.store.dispatch(draftOpened(newDraft(stored("checkout", 3))));
    edit(t);
    expect(t.store.getState().draft.draft).not.toBeNull();
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    expect(t.store.getState().draft.draft).toBeNull();
  });

  it("goes live when the confirmation arrives before the HTTP answer", async () => {
    const t = testStore();
    edit(t);
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4), at: 1100 }));
    expect(change(t).state).toBe("pending");
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    expect(change(t)).toMatchObject({ state: "live", version: 4, elapsedMs: 100 });
    expect(t.marks).toEqual(["aiops:confirmed:checkout@4"]);
  });

  it("rolls back on 409 and keeps the other writer's version to show", async () => {
    const t = testStore();
    edit(t);
    const current = stored("checkout", 5, { updated_by: "bob" });
    await t.answer({ ok: false, error: { status: 409, code: "version_conflict", message: "m", current } });
    expect(change(t).state).toBe("conflict");
    expect(change(t).error?.current?.updated_by).toBe("bob");
    const row = rows(t)[0]!;
    expect(row.state).toBe("conflict");
    expect(row.entry?.version).toBe(3);
    // Once the list has the other writer's version, the row shows it, still marked conflict.
    const refreshed = rows(t, [current])[0]!;
    expect(refreshed).toMatchObject({ state: "conflict", entry: { version: 5, updated_by: "bob" } });
  });

  it("rolls back on 422 and puts the errors on the draft, back in the editor", async () => {
    const t = testStore();
    t.store.dispatch(draftOpened(newDraft(stored("checkout", 3))));
    edit(t);
    const errors = [{ pointer: "/config/detectors/1/window", message: "window must be at least 5" }];
    await t.answer({ ok: false, error: { status: 422, code: "invalid_document", message: "1 field", errors } });
    const s = t.store.getState();
    expect(change(t).state).toBe("failed");
    expect(s.draft.draft?.errors).toEqual(errors);
    expect(s.draft.draft?.mode).toBe("expert");
    expect(s.route.route).toEqual({ view: "editor", name: "checkout" });
    expect(rows(t)[0]!.entry?.version).toBe(3);
  });

  it("rolls back on a network failure, keeping what to retry", async () => {
    const t = testStore();
    edit(t);
    await t.answer({ ok: false, error: { status: "network", message: "Failed to fetch" } });
    expect(change(t)).toMatchObject({ state: "failed", config: draftConfig });
    expect(rows(t)[0]).toMatchObject({ state: "failed", entry: { version: 3 } });
  });

  it("marks a change unconfirmed after 10 s without confirmation, and live when it comes later", async () => {
    const t = testStore();
    edit(t);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    vi.advanceTimersByTime(CONFIRM_TIMEOUT_MS - 1);
    expect(change(t).state).toBe("pending");
    vi.advanceTimersByTime(1);
    expect(change(t).state).toBe("unconfirmed");
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4), at: 20000 }));
    expect(change(t).state).toBe("live");
  });

  it("does not mark a failed change unconfirmed", async () => {
    const t = testStore();
    edit(t);
    await t.answer({ ok: false, error: { status: 500, message: "store_failed" } });
    vi.advanceTimersByTime(CONFIRM_TIMEOUT_MS * 2);
    expect(change(t).state).toBe("failed");
  });

  it("fails a change a pipeline rejected, with its reason", async () => {
    const t = testStore();
    edit(t);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4, { type: "config_rejected", reason: "no lstm here" }), at: 1 }));
    expect(change(t)).toMatchObject({ state: "failed", rejected: "no lstm here" });
  });

  it("shows a delete as pending, then removes the row on config_applied deleted", async () => {
    const t = testStore();
    const base = stored("checkout", 3);
    t.store.dispatch(applyRequested({ name: "checkout", kind: "delete", config: null, reason: "x", baseVersion: 3, previous: base }));
    expect(rows(t)[0]!.state).toBe("pending");
    await t.answer({ ok: true, status: 204, body: null });
    expect(change(t).version).toBe(4);
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4, { deleted: true }), at: 2 }));
    expect(rows(t)).toEqual([]);
  });

  it("ignores an HTTP answer for a change that was superseded", () => {
    let s = optimisticSlice.reducer(
      initialOptimisticState,
      applyStarted({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null, at: 0 }),
    );
    s = optimisticSlice.reducer(s, applyStarted({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null, at: 0 }));
    s = optimisticSlice.reducer(s, httpSucceeded({ name: "a", seq: 1, version: 2, stored: null }));
    expect(s.changes.a!.version).toBeNull();
  });

  it("lists a newer server version over a confirmed change", () => {
    const t = testStore();
    edit(t);
    t.store.dispatch(httpSucceeded({ name: "checkout", seq: 1, version: 4, stored: null }));
    const merged = mergeList([stored("checkout", 6, { updated_by: "carol" })], t.store.getState().optimistic.changes);
    expect(merged[0]).toMatchObject({ state: "live", entry: { version: 6, updated_by: "carol" } });
  });

  it("refetches the list when another writer's newer version is confirmed", async () => {
    const t = testStore();
    t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, [stored("checkout", 3)]));
    await flush();
    const spy = vi.spyOn(api.util, "invalidateTags");
    t.store.dispatch(configEventReceived({ event: applied("checkout", 3), at: 1 }));
    expect(spy).not.toHaveBeenCalled();
    t.store.dispatch(configEventReceived({ event: applied("checkout", 4), at: 1 }));
    // Invalidating a list nobody subscribes to drops it from the cache; put it back.
    t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, [stored("checkout", 4)]));
    await flush();
    t.store.dispatch(configEventReceived({ event: applied("brand-new", 1), at: 1 }));
    expect(spy).toHaveBeenCalledTimes(2);
    spy.mockRestore();
  });
});

describe("WebSocket middleware", () => {
  it("starts the socket with the token and dispatches events into the store", () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    const socket = t.ws.last();
    socket.open();
    socket.subscribed();
    expect(t.store.getState().connection.state).toBe("live");
    socket.receive({ type: "event", channel: "anomalies", event: { id: "a1", timestamp: 1, severity: "critical", value: 1, score: 1, detector: "d", model_version: "m" } });
    socket.receive({ type: "event", channel: "drift", event: { id: "d1", timestamp: 1, feature: "f", test: "t", statistic: 1, threshold: 1, model_version: "m" } });
    socket.receive({ type: "event", channel: "config", event: applied("checkout", 2) });
    const s = t.store.getState();
    expect(s.live.counts).toEqual({ events: 1, critical: 1, drift: 1 });
    expect(s.optimistic.confirmations["checkout@2"]).toBeDefined();
  });

  it("clears the token and asks for a new one on 4001", () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.ws.last().open();
    t.ws.last().subscribed();
    t.ws.last().drop(4001);
    const s = t.store.getState();
    expect(s.auth.token).toBeNull();
    expect(s.auth.error).toContain("expired");
    expect(s.connection.state).toBe("idle");
    expect(t.ws.sockets).toHaveLength(1);
  });

  it("puts a gap notice into the stream", () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.ws.last().open();
    t.ws.last().receive({ type: "gap", channel: "anomalies", since: "x", message: "history trimmed" });
    const first = t.store.getState().live.rows[0];
    expect(first?.kind).toBe("notice");
  });
});
