// The WebSocket to the gateway: subscriptions, resume from the last ids seen, dedupe, and a
// reconnect loop with exponential back-off and jitter. Framework-free so it can be tested alone.
import type { AnomalyEvent, ConfigEvent, DriftEvent } from "../api/types";
import { parseClaims } from "../app/auth";
import type { ConnectionState } from "./connectionSlice";
import { normalizeAnomaly, normalizeConfig, normalizeDrift } from "./normalize";
import { SeenIds } from "./seen";

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export interface WsDeps {
  createSocket(url: string): SocketLike;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
  /** The gateway's address for a token: same origin, path `/`. */
  url(token: string): string;
  /** Wall clock in ms, to tell an expired token before reconnecting with it. */
  now?(): number;
}

export interface WsHandlers {
  state(state: ConnectionState, text: string): void;
  anomaly(event: AnomalyEvent): void;
  drift(event: DriftEvent): void;
  config(event: ConfigEvent): void;
  notice(text: string): void;
  expired(): void;
  /** Config events may have been missed (no resume point, a gap, resume refused): refetch and stop waiting silently. */
  configResync(): void;
  /** The token may not subscribe to the config channel: no confirmation will ever come. */
  configRefused(): void;
}

export const TOKEN_EXPIRED = 4001;
export const FAIL_AFTER_ATTEMPTS = 3;
const ANOMALIES_ID = 1;
const DRIFT_ID = 2;
const CONFIG_ID = 3;

/** 250 ms · 2^attempt, at most 10 s, times a jitter in [0.5, 1) so dashboards do not reconnect in lockstep. */
export function backoffDelay(attempt: number, random: number): number {
  return Math.min(10000, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + random / 2);
}

export function browserUrl(token: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/?token=${encodeURIComponent(token)}`;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

export class WsManager {
  private token: string | null = null;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private everLive = false;
  private failed = false;
  private lastAnomalyId: string | null = null;
  private lastConfigId: string | null = null;
  private seen = new SeenIds(20000);
  /** The token the resume points and seen ids belong to. */
  private resumeToken: string | null = null;

  constructor(
    private readonly deps: WsDeps,
    private readonly on: WsHandlers,
  ) {}

  start(token: string): void {
    this.stop();
    if (token !== this.resumeToken) {
      // Another token (maybe another tenant): its stream has nothing to resume from ours.
      this.lastAnomalyId = null;
      this.lastConfigId = null;
      this.seen = new SeenIds(20000);
      this.resumeToken = token;
    }
    this.token = token;
    this.attempt = 0;
    this.everLive = false;
    this.failed = false;
    this.connect();
  }

  stop(): void {
    if (this.timer !== null) this.deps.clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    this.token = null;
    if (socket) socket.close(1000);
  }

  /** Resume points, exposed for tests and diagnostics. */
  get resume(): { anomalies: string | null; config: string | null } {
    return { anomalies: this.lastAnomalyId, config: this.lastConfigId };
  }

  private setState(state: ConnectionState, text: string): void {
    this.on.state(state, text);
  }

  /** Whether the token's `exp` has passed (a reconnect with it would be refused with an HTTP 401 the browser hides). */
  private expiredNow(token: string): boolean {
    const exp = parseClaims(token)?.exp;
    return exp !== undefined && this.deps.now !== undefined && exp * 1000 <= this.deps.now();
  }

  private expire(): void {
    this.token = null;
    this.setState("idle", "token expired");
    this.on.expired();
  }

  private connect(): void {
    const token = this.token;
    if (token === null) return;
    this.timer = null;
    if (this.attempt > 0 && this.expiredNow(token)) {
      this.expire();
      return;
    }
    if (!this.failed) {
      this.setState(this.attempt === 0 ? "connecting" : "reconnecting", this.attempt === 0 ? "connecting…" : "reconnecting…");
    }
    let socket: SocketLike;
    try {
      socket = this.deps.createSocket(this.deps.url(token));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    let subscribed = false;
    socket.onopen = () => {
      const anomalies: Record<string, unknown> = { type: "subscribe", id: ANOMALIES_ID, channel: "anomalies" };
      if (this.lastAnomalyId) anomalies.since = this.lastAnomalyId;
      socket.send(JSON.stringify(anomalies));
      socket.send(JSON.stringify({ type: "subscribe", id: DRIFT_ID, channel: "drift" }));
      const config: Record<string, unknown> = { type: "subscribe", id: CONFIG_ID, channel: "config" };
      if (this.lastConfigId) config.since = this.lastConfigId;
      else if (this.everLive) {
        // Back after a drop with no config event seen yet: whatever was confirmed meanwhile is lost to us.
        this.on.configResync();
      }
      socket.send(JSON.stringify(config));
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket || typeof message.data !== "string") return;
      let msg: unknown;
      try {
        msg = JSON.parse(message.data);
      } catch {
        return;
      }
      if (!isObject(msg)) return;
      switch (msg.type) {
        case "subscribed":
          if (msg.channel === "anomalies") {
            subscribed = true;
            this.everLive = true;
            this.failed = false;
            this.attempt = 0;
            this.setState("live", "live");
          }
          break;
        case "event":
          this.dispatchEvent(msg.channel, msg.event);
          break;
        case "gap":
          // History no longer reaches back to where we were: say so in the stream.
          this.on.notice(
            `${String(msg.channel ?? "stream")}: events since ${String(msg.since ?? "?")} were missed: ${String(msg.message ?? "")}`,
          );
          if (msg.channel === "config") this.on.configResync();
          break;
        case "error":
          if (msg.id === CONFIG_ID) {
            // Confirmations depend on this channel: a refusal means none will come, a failed resume that some were lost.
            if (msg.code === "forbidden") this.on.configRefused();
            else this.on.configResync();
          } else if (msg.id !== DRIFT_ID) {
            // A token without the drift channel is fine; anything about anomalies is worth showing.
            this.on.notice(`gateway: ${String(msg.code ?? "error")}: ${String(msg.message ?? "")}`);
          }
          break;
      }
    };
    socket.onerror = () => undefined;
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (close.code === TOKEN_EXPIRED || this.expiredNow(token)) {
        this.expire();
        return;
      }
      if (!subscribed && !this.everLive && this.attempt + 1 >= FAIL_AFTER_ATTEMPTS) {
        // Never got in: most likely a bad token (the refusal is an HTTP 401 the browser hides).
        this.failed = true;
        this.setState("failed", "cannot connect: check the token");
      }
      this.scheduleReconnect();
    };
  }

  private dispatchEvent(channel: unknown, raw: unknown): void {
    // Checked before it is remembered: a malformed event is dropped, never half-rendered.
    if (channel === "anomalies") {
      const event: AnomalyEvent | null = normalizeAnomaly(raw);
      if (!event) return;
      this.lastAnomalyId = event.id;
      if (this.seen.remember(`a:${event.id}`)) this.on.anomaly(event);
    } else if (channel === "drift") {
      const event: DriftEvent | null = normalizeDrift(raw);
      if (event && this.seen.remember(`d:${event.id}`)) this.on.drift(event);
    } else if (channel === "config") {
      const event: ConfigEvent | null = normalizeConfig(raw);
      if (!event) return;
      this.lastConfigId = event.id;
      if (this.seen.remember(`c:${event.id}`)) this.on.config(event);
    }
  }

  private scheduleReconnect(): void {
    if (this.token === null) return;
    this.attempt += 1;
    const delay = backoffDelay(this.attempt, this.deps.random());
    if (!this.failed) this.setState("reconnecting", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.timer = this.deps.setTimeout(() => this.connect(), delay);
  }
}
