// Regression tests for the review findings on the wire (WebSocket, HTTP) and the token.
import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../src/api/api";
import { fetchWriter, WRITE_TIMEOUT_MS } from "../src/api/http";
import { extent, seriesResponse, storedConfigs } from "../src/api/shapes";
import { acceptLinkToken, canSeeConfig, linkToken, parseClaims, tokenSet } from "../src/app/auth";
import { applyRequested } from "../src/optimistic/listener";
import { WsManager } from "../src/ws/manager";
import { anomaly, fakeWsDeps, jwt, stored, wsHandlers } from "./helpers";
import { testStore } from "./store";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});


describe("finding 8: WebSocket events are checked, not cast", () => {
  it("drops an anomaly with a non-string severity and makes other fields text, through the middleware", () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    const socket = t.ws.last();
    socket.open();
    socket.subscribed();
    socket.receive({ type: "event", channel: "anomalies", event: { ...anomaly("bad"), severity: {} } });
    socket.receive({ type: "event", channel: "anomalies", event: { ...anomaly("odd"), detector: { x: 1 }, model_version: 3, series: { name: ["x"], labels: { a: {} } } } });
    socket.receive({ type: "event", channel: "anomalies", event: { ...anomaly(""), id: 7 } });
    socket.receive({ type: "event", channel: "drift", event: { id: "d1", feature: {}, test: null, statistic: "1" } });
    const s = t.store.getState();
    expect(s.live.rows.map((r) => (r.kind === "event" ? r.event.id : r.id))).toEqual(["odd"]);
    const row = s.live.rows[0]!;
    expect(row.kind === "event" && [row.event.detector, row.event.model_version, row.event.series?.name, row.event.series?.labels?.a]).toEqual(["", "3", "", ""]);
    expect(s.live.drift[0]).toMatchObject({ id: "d1", feature: "", test: "" });
    // The dropped event's id was not marked seen: a good copy of it still gets in.
    socket.receive({ type: "event", channel: "anomalies", event: anomaly("bad") });
    expect(t.store.getState().live.rows).toHaveLength(2);
  });
});

describe("finding 9: HTTP responses are checked", () => {
  it("reads a list whose items are not an array as empty, and drops entries without a name or version", () => {
    expect(storedConfigs({ items: { a: 1 } })).toEqual([]);
    expect(storedConfigs(null)).toEqual([]);
    expect(storedConfigs({ items: [stored("a", 1), { name: "b" }, 5] }).map((c) => c.name)).toEqual(["a"]);
  });

  it("gives every series item an object of string labels and numeric points", () => {
    const r = seriesResponse({ items: [{ name: "cpu", labels: "oops", points: [[1, 2], ["x", 3], null] }] });
    expect(r.items[0]).toMatchObject({ name: "cpu", key: "cpu", labels: {}, points: [[1, 2]] });
  });

  it("finds min and max of a long series without spreading it into arguments", () => {
    const many = Array.from({ length: 300000 }, (_, i) => i);
    expect(() => Math.min(...many)).toThrow(RangeError);
    expect(extent(many)).toEqual([0, 299999]);
  });
});

describe("finding 10: a token that expired while disconnected", () => {
  it("brings back the token form instead of reconnecting forever", () => {
    const f = fakeWsDeps();
    let now = 1000_000;
    f.deps.now = () => now;
    const h = wsHandlers();
    new WsManager(f.deps, h).start(jwt({ tenant: "acme", exp: 2000 }));
    f.last().open();
    f.last().subscribed();
    now = 2000_000;
    f.last().drop(1006);
    expect(h.expired).toHaveBeenCalledTimes(1);
    expect(f.timers.filter((x) => !x.cancelled)).toHaveLength(0);
  });

  it("checks again before each reconnect", () => {
    const f = fakeWsDeps();
    let now = 1000_000;
    f.deps.now = () => now;
    const h = wsHandlers();
    new WsManager(f.deps, h).start(jwt({ tenant: "acme", exp: 2000 }));
    f.last().open();
    f.last().subscribed();
    f.last().drop(1006);
    expect(h.expired).not.toHaveBeenCalled();
    now = 2000_001;
    f.fireTimer();
    expect(h.expired).toHaveBeenCalledTimes(1);
    expect(f.sockets).toHaveLength(1);
  });

  it("clears the token when a write gets HTTP 401", async () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    t.store.dispatch(applyRequested({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null }));
    await t.answer({ ok: false, error: { status: 401, message: "token expired" } });
    expect(t.store.getState().auth.token).toBeNull();
    expect(t.store.getState().auth.error).toContain("401");
  });
});

describe("finding 4: the socket of a new token resumes nothing of the old one", () => {
  it("clears resume points when the token changes, keeps them on a restart with the same token", () => {
    const f = fakeWsDeps();
    const m = new WsManager(f.deps, wsHandlers());
    m.start("t1");
    f.last().open();
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a1") });
    m.start("t1");
    expect(m.resume.anomalies).toBe("a1");
    m.start("t2");
    expect(m.resume.anomalies).toBeNull();
    f.last().open();
    expect(f.last().sent[0]).not.toHaveProperty("since");
  });
});

describe("finding 11: a failed write refetches the list", () => {
  for (const status of [409, 500, "network"] as const) {
    it(`invalidates the list and history after ${status}`, async () => {
      const t = testStore();
      const spy = vi.spyOn(api.util, "invalidateTags");
      t.store.dispatch(applyRequested({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null }));
      await t.answer({ ok: false, error: { status, message: "m" } });
      expect(spy).toHaveBeenCalledWith(["Detectors", { type: "History", id: "a" }]);
    });
  }

  it("does not refetch after a 422 (nothing changed on the server)", async () => {
    const t = testStore();
    const spy = vi.spyOn(api.util, "invalidateTags");
    t.store.dispatch(applyRequested({ name: "a", kind: "upsert", config: {}, reason: "", baseVersion: 1, previous: null }));
    await t.answer({ ok: false, error: { status: 422, message: "m" } });
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("finding 12: a #token= link in a running tab", () => {
  const alice = jwt({ tenant: "acme", sub: "alice" });
  it("asks before switching to another tenant or user, and not for the same one", () => {
    const ask = vi.fn(() => false);
    expect(acceptLinkToken(alice, alice, ask)).toBe(true);
    expect(acceptLinkToken(jwt({ tenant: "acme", sub: "alice", exp: 5 }), alice, ask)).toBe(true);
    expect(acceptLinkToken(alice, null, ask)).toBe(true);
    expect(ask).not.toHaveBeenCalled();
    expect(acceptLinkToken(jwt({ tenant: "globex", sub: "mallory" }), alice, ask)).toBe(false);
    expect(ask).toHaveBeenCalledWith(expect.stringContaining("tenant globex"));
  });

  it("strips the link's token from the address and takes it only if accepted", () => {
    const mallory = jwt({ tenant: "globex", sub: "mallory" });
    const loc = { hash: `#token=${mallory}`, pathname: "/", search: "" } as Location;
    const replaceState = vi.fn();
    const hist = { replaceState } as unknown as History;
    expect(linkToken(loc, hist, alice, () => false)).toBeNull();
    expect(replaceState).toHaveBeenCalledWith(null, "", "/");
    expect(linkToken(loc, hist, alice, () => true)).toBe(mallory);
    expect(linkToken(loc, hist, mallory, () => false)).toBeNull();
  });
});

describe("finding 13: writes time out", () => {
  it("fails a write the server never answers as a network failure after 30 s", async () => {
    vi.useFakeTimers();
    vi.stubGlobal(
      "fetch",
      vi.fn(
        (_url: string, init: RequestInit) =>
          new Promise<Response>((_resolve, reject) => {
            init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
          }),
      ),
    );
    let outcome: Awaited<ReturnType<typeof fetchWriter>> | null = null;
    void fetchWriter("t", { method: "PUT", path: "/x", body: {} }).then((o) => (outcome = o));
    await vi.advanceTimersByTimeAsync(WRITE_TIMEOUT_MS - 1);
    expect(outcome).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toEqual({ ok: false, error: { status: "network", message: "no answer within 30 s" } });
  });
});

describe("finding 3: a token that cannot see confirmations", () => {
  it("reads the channels claim, globs included", () => {
    expect(canSeeConfig(parseClaims(jwt({ channels: ["anomalies", "drift"] })))).toBe(false);
    expect(canSeeConfig(parseClaims(jwt({ channels: ["*"] })))).toBe(true);
    expect(canSeeConfig(parseClaims(jwt({ channels: ["conf*"] })))).toBe(true);
    expect(canSeeConfig(parseClaims(jwt({ channels: ["config"] })))).toBe(true);
  });
});

describe("finding 9: the API's answers go through the shape checks", () => {
  it("lists nothing, instead of crashing the list, when `items` is not an array", async () => {
    const Base = Request;
    vi.stubGlobal(
      "Request",
      class extends Base {
        constructor(input: RequestInfo | URL, init?: RequestInit) {
          super(typeof input === "string" ? new URL(input, "http://ui.test") : input, init);
        }
      },
    );
    const bodies: unknown[] = [{ items: { not: "a list" } }, { items: [stored("a", 1), { name: 5 }] }];
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify(bodies.shift()), { status: 200, headers: { "Content-Type": "application/json" } })),
    );
    const t = testStore();
    const first = await t.store.dispatch(api.endpoints.listDetectors.initiate(undefined, { forceRefetch: true }));
    expect(first.data).toEqual([]);
    const second = await t.store.dispatch(api.endpoints.listDetectors.initiate(undefined, { forceRefetch: true }));
    expect(second.data?.map((c) => c.name)).toEqual(["a"]);
  });
});
