// Test doubles: a scriptable WebSocket, manual timers, and sample events.
import type { AnomalyEvent, ConfigEvent, StoredConfig } from "../src/api/types";
import { vi } from "vitest";
import type { SocketLike, WsDeps, WsHandlers } from "../src/ws/manager";

export class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: Array<Record<string, unknown>> = [];
  closed: number | null = null;
  constructor(public url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code?: number) {
    this.closed = code ?? 1000;
  }
  open() {
    this.onopen?.({});
  }
  receive(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
  subscribed(channel = "anomalies", id = 1) {
    this.receive({ type: "subscribed", id, channel });
  }
}

export function fakeWsDeps(random = 0.5) {
  const sockets: FakeSocket[] = [];
  const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const deps: WsDeps = {
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    setTimeout: (fn, ms) => {
      const t = { fn, ms, cancelled: false };
      timers.push(t);
      return t;
    },
    clearTimeout: (h) => {
      (h as { cancelled: boolean }).cancelled = true;
    },
    random: () => random,
    url: (token) => `ws://example.test/?token=${encodeURIComponent(token)}`,
  };
  /** Runs the newest pending timer (the reconnect). */
  const fireTimer = () => {
    const t = [...timers].reverse().find((x) => !x.cancelled);
    if (!t) throw new Error("no timer");
    t.cancelled = true;
    t.fn();
    return t.ms;
  };
  const last = () => {
    const s = sockets[sockets.length - 1];
    if (!s) throw new Error("no socket");
    return s;
  };
  return { deps, sockets, timers, fireTimer, last };
}

export function anomaly(id: string, over: Partial<AnomalyEvent> = {}): AnomalyEvent {
  return {
    id,
    timestamp: 1000,
    severity: "warning",
    series: { name: "cpu", labels: { host: "a" }, key: "k1" },
    value: 5,
    expected: { lower: 1, upper: 3 },
    score: 4,
    detector: "range",
    model_version: "acme.checkout@3",
    template: "checkout",
    ...over,
  };
}

export function applied(name: string, version: number, over: Partial<ConfigEvent> = {}): ConfigEvent {
  return {
    schema_version: 1,
    type: "config_applied",
    id: `acme.${name}@${version}/host:1/applied`,
    tenant: "acme",
    name,
    version,
    instance: "host:1",
    at: 0,
    ...over,
  };
}

export function stored(name: string, version: number, over: Partial<StoredConfig> = {}): StoredConfig {
  return {
    name,
    tenant: "acme",
    version,
    updated_by: "alice",
    updated_at: 1,
    reason: "r",
    config: { match: { metric: "lat*" }, detectors: [{ kind: "range" }], alert: { warning: 2 } },
    ...over,
  };
}

/** A JWT-shaped token with these claims (the UI only decodes it; the gateway verifies). */
export function jwt(claims: Record<string, unknown>): string {
  const b64 = btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `h.${b64}.s`;
}

/** A WebSocket manager's handlers, each a spy. */
export function wsHandlers() {
  return {
    state: vi.fn(),
    anomaly: vi.fn(),
    drift: vi.fn(),
    config: vi.fn(),
    notice: vi.fn(),
    expired: vi.fn(),
    configResync: vi.fn(),
    configRefused: vi.fn(),
  } satisfies WsHandlers;
}
