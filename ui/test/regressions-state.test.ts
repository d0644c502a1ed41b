// Regression tests for the review findings on the optimistic updater, the stream and the store.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api } from "../src/api/api";
import { tokenCleared, tokenSet } from "../src/app/auth";
import { parseRoute } from "../src/app/route";
import { deleteBase } from "../src/detectors/DetectorList";
import { draftOpened, draftStorageKey, newDraft } from "../src/detectors/draftSlice";
import { anomalyReceived, initialLiveState, liveSlice } from "../src/live/liveSlice";
import { applyRequested } from "../src/optimistic/listener";
import {
  applyStarted,
  configEventReceived,
  httpSucceeded,
  initialOptimisticState,
  mergeList,
  optimisticSlice,
  type OptimisticState,
} from "../src/optimistic/optimistic";
import type { ConfigEvent } from "../src/api/types";
import { anomaly, applied, jwt, stored } from "./helpers";
import { flush, testStore } from "./store";

type T = ReturnType<typeof testStore>;
const change = (t: T, name = "checkout") => t.store.getState().optimistic.changes[name]!;


function edit(t: T, baseVersion: number, config = { description: "mine" }) {
  t.store.dispatch(
    applyRequested({ name: "checkout", kind: "upsert", config, reason: "r", baseVersion, previous: stored("checkout", baseVersion) }),
  );
}

describe("finding 1: a second write to a name while the first is in flight", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("waits for the first and is based on the version the first got, not on the locally made row", async () => {
    const t = testStore();
    edit(t, 3);
    // The list row shows the guessed v4 while the PUT is in flight; a second edit made on it:
    edit(t, 4, { description: "again" });
    expect(t.requests).toHaveLength(1);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 7) });
    expect(t.requests).toHaveLength(2);
    expect(t.requests[1]!.headers).toEqual({ "If-Match": '"7"' });
  });

  it("does not let a superseded request's 422 send the user to the editor", async () => {
    const t = testStore();
    t.store.dispatch(draftOpened(newDraft(stored("checkout", 3))));
    edit(t, 3);
    edit(t, 4);
    await t.answer({ ok: false, error: { status: 422, message: "bad", errors: [{ pointer: "/config/x", message: "no" }] } });
    expect(t.store.getState().route.route).toEqual({ view: "live" });
    expect(t.store.getState().draft.draft?.errors).toEqual([]);
  });

  it("does not let a superseded request's success close the draft of the newer one", async () => {
    const t = testStore();
    t.store.dispatch(draftOpened(newDraft(stored("checkout", 3))));
    edit(t, 3);
    edit(t, 4);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    expect(t.store.getState().draft.draft).not.toBeNull();
    await t.answer({ ok: true, status: 200, body: stored("checkout", 5) });
    expect(t.store.getState().draft.draft).toBeNull();
  });

  it("offers no Delete base while the edit has no server version, and never uses the made-up row", async () => {
    const t = testStore();
    const server = [stored("checkout", 3)];
    edit(t, 3);
    const row = () => mergeList(server, t.store.getState().optimistic.changes)[0]!;
    expect(row().entry?.version).toBe(4);
    expect(deleteBase(row())).toBeNull();
    // Once the server answered, the delete is based on the stored version and the stored entry.
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4, { updated_by: "me", config: { description: "stored" } }) });
    const base = deleteBase(row())!;
    expect(base.baseVersion).toBe(4);
    expect(base.previous).toMatchObject({ version: 4, updated_by: "me", config: { description: "stored" } });
  });
});

describe("finding 2: finished changes do not stay laid over the server list", () => {
  function liveChange(kind: "upsert" | "delete", version: number, confirmedAt = 1500): OptimisticState {
    let s = optimisticSlice.reducer(
      initialOptimisticState,
      applyStarted({ name: "checkout", kind, config: kind === "delete" ? null : { description: "mine" }, reason: "", baseVersion: version - 1, previous: stored("checkout", version - 1), at: 1000 }),
    );
    s = optimisticSlice.reducer(s, httpSucceeded({ name: "checkout", seq: 1, version, stored: null }));
    return optimisticSlice.reducer(s, configEventReceived({ event: applied("checkout", version, { deleted: kind === "delete" }), at: confirmedAt }));
  }

  it("drops a confirmed edit once a list fetched after the confirmation no longer has the name (deleted by someone else)", () => {
    const s = liveChange("upsert", 4);
    expect(s.changes.checkout!.state).toBe("live");
    expect(mergeList([], s.changes, "", 1000)).toHaveLength(1);
    expect(mergeList([], s.changes, "", 2000)).toEqual([]);
  });

  it("shows the server's entry for a confirmed edit once the list has that version", () => {
    const s = liveChange("upsert", 4);
    const row = mergeList([stored("checkout", 4, { reason: "as stored", updated_at: 77 })], s.changes)[0]!;
    expect(row).toMatchObject({ state: "live", entry: { version: 4, reason: "as stored", updated_at: 77 } });
  });

  it("does not let a confirmed delete hide a later re-create of the name", () => {
    const s = liveChange("delete", 4);
    expect(mergeList([stored("checkout", 3)], s.changes)).toEqual([]);
    expect(mergeList([stored("checkout", 5, { updated_by: "carol" })], s.changes)[0]).toMatchObject({
      state: "live",
      entry: { version: 5, updated_by: "carol" },
    });
  });
});

describe("finding 3: confirmations lost over a reconnect", () => {
  it("marks waiting changes as possibly missed and refetches when the config channel resumes without a point", async () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.ws.last().open();
    t.ws.last().subscribed();
    edit(t, 3);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    expect(change(t).state).toBe("pending");
    const spy = vi.spyOn(api.util, "invalidateTags");
    // The gateway restarts before config_applied: no config event was ever seen, so no `since`.
    t.ws.last().drop(1006);
    t.ws.fireTimer();
    t.ws.last().open();
    expect(t.ws.last().sent.find((m) => m.channel === "config")).not.toHaveProperty("since");
    expect(change(t)).toMatchObject({ state: "unconfirmed", missed: true });
    expect(spy).toHaveBeenCalledWith(["Detectors"]);
    spy.mockRestore();
  });

  it("treats a gap on the config channel the same way", async () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.ws.last().open();
    edit(t, 3);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    t.ws.last().receive({ type: "gap", channel: "config", since: "x", message: "trimmed" });
    expect(change(t)).toMatchObject({ state: "unconfirmed", missed: true });
  });

  it("treats history_unavailable on the config subscription the same way, and remembers a forbidden one", async () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.ws.last().open();
    edit(t, 3);
    await t.answer({ ok: true, status: 200, body: stored("checkout", 4) });
    t.ws.last().receive({ type: "error", id: 3, code: "history_unavailable", message: "broker down" });
    expect(change(t).missed).toBe(true);
    t.ws.last().receive({ type: "error", id: 3, code: "forbidden", message: "no" });
    expect(t.store.getState().connection.configRefused).toBe(true);
  });
});

describe("finding 4: a token for another tenant starts clean", () => {
  it("resets live rows, changes, the open draft and the API cache when the tenant changes, not when it stays", async () => {
    const t = testStore();
    const acme = jwt({ tenant: "acme", sub: "alice", exp: 9e9, channels: ["*"] });
    t.store.dispatch(tokenSet(acme));
    t.store.dispatch(anomalyReceived({ event: anomaly("a1"), at: 1 }));
    edit(t, 3);
    t.store.dispatch(draftOpened(newDraft(stored("checkout", 3))));
    await t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, [stored("checkout", 3)]));
    t.store.dispatch(tokenSet(jwt({ tenant: "acme", sub: "alice", exp: 9e9 + 1, channels: ["*"] })));
    expect(t.store.getState().live.rows).toHaveLength(1);
    t.store.dispatch(tokenSet(jwt({ tenant: "globex", sub: "alice", exp: 9e9, channels: ["*"] })));
    await flush();
    const s = t.store.getState();
    expect(s.live.rows).toEqual([]);
    expect(s.optimistic.changes).toEqual({});
    expect(s.draft.draft).toBeNull();
    expect(api.endpoints.listDetectors.select()(s).data).toBeUndefined();
  });

  it("resets on tokenCleared", () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.store.dispatch(anomalyReceived({ event: anomaly("a1"), at: 1 }));
    t.store.dispatch(tokenCleared(null));
    expect(t.store.getState().live.rows).toEqual([]);
  });

  it("keys saved drafts by tenant", () => {
    expect(draftStorageKey("acme", "checkout")).not.toBe(draftStorageKey("globex", "checkout"));
    expect(draftStorageKey("acme", null)).toBe("aiops.draft.acme/+new");
  });
});

describe("finding 5: config events are checked and settle by one rule", () => {
  const start = () => {
    let s = optimisticSlice.reducer(
      initialOptimisticState,
      applyStarted({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null, at: 0 }),
    );
    s = optimisticSlice.reducer(s, httpSucceeded({ name: "a", seq: 1, version: 2, stored: null }));
    return s;
  };
  const ev = (over: Partial<ConfigEvent> | Record<string, unknown>) => ({ event: { ...applied("a", 2), ...over } as ConfigEvent, at: 5 });

  it("ignores an unknown event type and one without a string instance", () => {
    let s = optimisticSlice.reducer(start(), configEventReceived(ev({ type: "config_exploded" })));
    s = optimisticSlice.reducer(s, configEventReceived(ev({ instance: 7 })));
    expect(s.changes.a!.state).toBe("pending");
    expect(s.confirmationOrder).toEqual([]);
  });

  it("keeps a change live when a rejection arrives after an applied, and shows the rejection", () => {
    let s = optimisticSlice.reducer(start(), configEventReceived(ev({})));
    s = optimisticSlice.reducer(s, configEventReceived(ev({ type: "config_rejected", instance: "b", reason: "no lstm" })));
    expect(s.changes.a).toMatchObject({ state: "live", rejected: "no lstm" });
  });

  it("turns a rejected change live when another pipeline applies it", () => {
    let s = optimisticSlice.reducer(start(), configEventReceived(ev({ type: "config_rejected", instance: "b", reason: "no lstm" })));
    expect(s.changes.a!.state).toBe("failed");
    s = optimisticSlice.reducer(s, configEventReceived(ev({})));
    expect(s.changes.a).toMatchObject({ state: "live", rejected: "no lstm" });
  });
});

describe("finding 6: names that are Object.prototype members", () => {
  it("counts what __proto__ and constructor caught without throwing", () => {
    let s = liveSlice.reducer(initialLiveState, anomalyReceived({ event: anomaly("a", { template: "__proto__" }), at: 1 }));
    s = liveSlice.reducer(s, anomalyReceived({ event: anomaly("b", { template: "constructor", series: { name: "x", key: "constructor" } }), at: 1 }));
    s = liveSlice.reducer(s, anomalyReceived({ event: anomaly("c", { template: "constructor", series: { name: "y", key: "__proto__" } }), at: 1 }));
    expect(Object.keys(s.caught).sort()).toEqual(["__proto__", "constructor"]);
    expect(s.seriesCount).toBe(3);
  });

  it("tracks a change to a detector named __proto__ or constructor", async () => {
    const t = testStore();
    for (const name of ["__proto__", "constructor"]) {
      t.store.dispatch(applyRequested({ name, kind: "upsert", config: {}, reason: "", baseVersion: null, previous: null }));
      await t.answer({ ok: true, status: 200, body: stored(name, 1) });
      t.store.dispatch(configEventReceived({ event: applied(name, 1), at: 2 }));
    }
    const changes = t.store.getState().optimistic.changes;
    expect(Object.keys(changes).sort()).toEqual(["__proto__", "constructor"]);
    expect(mergeList([], changes).map((r) => [r.name, r.state])).toEqual([
      ["__proto__", "live"],
      ["constructor", "live"],
    ]);
  });
});

describe("finding 7: a malformed route", () => {
  it("falls back to the list instead of throwing URIError", () => {
    expect(parseRoute("#/detectors/%E0")).toEqual({ view: "detectors" });
    expect(parseRoute("#/detectors/a%20b")).toEqual({ view: "editor", name: "a b" });
  });
});
