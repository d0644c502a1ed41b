import { describe, expect, it } from "vitest";
import { backoffDelay, WsManager } from "../src/ws/manager";
import { SeenIds } from "../src/ws/seen";
import { anomaly, applied, fakeWsDeps, wsHandlers } from "./helpers";


describe("WebSocket manager", () => {
  it("connects to the token's URL and subscribes to anomalies, drift and config", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("a.b c");
    expect(f.last().url).toBe("ws://example.test/?token=a.b%20c");
    f.last().open();
    expect(f.last().sent).toEqual([
      { type: "subscribe", id: 1, channel: "anomalies" },
      { type: "subscribe", id: 2, channel: "drift" },
      { type: "subscribe", id: 3, channel: "config" },
    ]);
    expect(h.state).toHaveBeenLastCalledWith("connecting", "connecting…");
  });

  it("is live once the anomalies channel is subscribed", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().subscribed("drift", 2);
    expect(h.state).not.toHaveBeenCalledWith("live", "live");
    f.last().subscribed();
    expect(h.state).toHaveBeenLastCalledWith("live", "live");
  });

  it("dispatches anomalies, drift and config events to their handlers", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a1") });
    f.last().receive({ type: "event", channel: "drift", event: { id: "d1" } });
    f.last().receive({ type: "event", channel: "config", event: applied("checkout", 3) });
    expect(h.anomaly).toHaveBeenCalledWith(expect.objectContaining({ id: "a1" }));
    expect(h.drift).toHaveBeenCalledWith(expect.objectContaining({ id: "d1" }));
    expect(h.config).toHaveBeenCalledWith(expect.objectContaining({ name: "checkout", version: 3 }));
  });

  it("resumes anomalies and config from the last ids seen after a reconnect", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().subscribed();
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a7") });
    f.last().receive({ type: "event", channel: "config", event: applied("x", 2) });
    f.last().drop(1006);
    f.fireTimer();
    f.last().open();
    expect(f.last().sent).toEqual([
      { type: "subscribe", id: 1, channel: "anomalies", since: "a7" },
      { type: "subscribe", id: 2, channel: "drift" },
      { type: "subscribe", id: 3, channel: "config", since: "acme.x@2/host:1/applied" },
    ]);
  });

  it("drops events replayed after a reconnect", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a1") });
    f.last().drop();
    f.fireTimer();
    f.last().open();
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a1") });
    f.last().receive({ type: "event", channel: "anomalies", event: anomaly("a2") });
    expect(h.anomaly).toHaveBeenCalledTimes(2);
  });

  it("backs off exponentially with jitter, capped at 10 s", () => {
    expect(backoffDelay(1, 0)).toBe(250);
    expect(backoffDelay(1, 1)).toBe(500);
    expect(backoffDelay(3, 0.5)).toBe(2000 * 0.75);
    expect(backoffDelay(20, 0.999)).toBeLessThanOrEqual(10000);
    const f = fakeWsDeps(0);
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      f.last().drop();
      delays.push(f.fireTimer());
    }
    expect(delays).toEqual([250, 500, 1000, 2000]);
  });

  it("resets the back-off once subscribed again", () => {
    const f = fakeWsDeps(0);
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().drop();
    f.fireTimer();
    f.last().drop();
    f.fireTimer();
    f.last().open();
    f.last().subscribed();
    f.last().drop();
    expect(f.fireTimer()).toBe(250);
  });

  it("asks for a new token on close code 4001 and does not reconnect", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().subscribed();
    f.last().drop(4001);
    expect(h.expired).toHaveBeenCalledTimes(1);
    expect(f.timers.filter((t) => !t.cancelled)).toHaveLength(0);
    expect(f.sockets).toHaveLength(1);
  });

  it("fails after 3 attempts that never subscribed, and keeps retrying", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().drop();
    f.fireTimer();
    f.last().drop();
    expect(h.state).not.toHaveBeenCalledWith("failed", expect.anything());
    f.fireTimer();
    f.last().drop();
    expect(h.state).toHaveBeenLastCalledWith("failed", "cannot connect: check the token");
    f.fireTimer();
    expect(f.sockets).toHaveLength(4);
    // While failed, the badge is not overwritten with "reconnecting".
    expect(h.state).toHaveBeenLastCalledWith("failed", "cannot connect: check the token");
  });

  it("never fails a token that once got subscribed", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().subscribed();
    for (let i = 0; i < 5; i++) {
      f.last().drop();
      f.fireTimer();
    }
    expect(h.state).not.toHaveBeenCalledWith("failed", expect.anything());
  });

  it("turns gaps and anomaly-channel errors into notices, ignoring drift/config refusals", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().open();
    f.last().receive({ type: "gap", channel: "anomalies", since: "a1", message: "trimmed" });
    f.last().receive({ type: "error", id: 2, code: "forbidden", message: "no drift" });
    f.last().receive({ type: "error", id: 1, code: "bad", message: "nope" });
    expect(h.notice).toHaveBeenCalledTimes(2);
    expect(h.notice.mock.calls[0]![0]).toContain("trimmed");
    expect(h.notice.mock.calls[1]![0]).toBe("gateway: bad: nope");
  });

  it("stop closes the socket and cancels the reconnect", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    const m = new WsManager(f.deps, h);
    m.start("t");
    const s = f.last();
    s.drop();
    m.stop();
    expect(f.timers.every((t) => t.cancelled)).toBe(true);
    m.start("u");
    f.last().open();
    expect(f.sockets).toHaveLength(2);
    // Messages on an old socket are ignored.
    s.receive({ type: "event", channel: "anomalies", event: anomaly("old") });
    expect(h.anomaly).not.toHaveBeenCalled();
  });

  it("ignores frames that are not JSON objects", () => {
    const f = fakeWsDeps();
    const h = wsHandlers();
    new WsManager(f.deps, h).start("t");
    f.last().onmessage?.({ data: "not json" });
    f.last().receive([1, 2]);
    f.last().receive({ type: "event", channel: "anomalies", event: { no: "id" } });
    expect(h.anomaly).not.toHaveBeenCalled();
  });
});

describe("SeenIds", () => {
  it("remembers up to its capacity and forgets the oldest", () => {
    const s = new SeenIds(3);
    expect(["a", "b", "c"].map((x) => s.remember(x))).toEqual([true, true, true]);
    expect(s.remember("a")).toBe(false);
    expect(s.remember("d")).toBe(true);
    expect(s.size).toBe(3);
    expect(s.remember("a")).toBe(true);
    expect(s.remember("c")).toBe(false);
  });
});
