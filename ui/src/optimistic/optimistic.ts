// The optimistic updater's pure part: each change in flight (pending → live, or rolled back with a
// reason) and every confirmation the pipelines sent, remembered by name@version so one that
// arrives before the HTTP answer still counts.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { ApiError, ConfigEvent, JsonObject, StoredConfig } from "../api/types";
import { dict, own } from "../util/dict";

export const CONFIRM_TIMEOUT_MS = 10000;
const MAX_CONFIRMATIONS = 2000;

export type ChangeState = "pending" | "live" | "failed" | "conflict" | "unconfirmed";
export type ChangeKind = "upsert" | "delete" | "revert";

export interface Change {
  name: string;
  kind: ChangeKind;
  /** The configuration the user asked for (null for a delete; for a revert, the old version's). */
  config: JsonObject | null;
  reason: string;
  /** Version the draft was based on (If-Match); null creates (If-None-Match: *). */
  baseVersion: number | null;
  /** For a revert: the version whose content comes back. */
  revertTo?: number;
  /** The list entry before the change, restored on a rollback. */
  previous: StoredConfig | null;
  state: ChangeState;
  /** The version the server gave the change (known once the HTTP answer arrives). */
  version: number | null;
  /** Set when the HTTP answer arrived. */
  stored: StoredConfig | null;
  startedAt: number;
  confirmedAt: number | null;
  /** Click to confirmation, in ms. */
  elapsedMs: number | null;
  error: ApiError | null;
  /** Why a pipeline refused the version (config_rejected), even when another applied it. */
  rejected: string | null;
  /** The stream lost events while this change waited (reconnect without resume, gap): its confirmation may have been missed. */
  missed: boolean;
  seq: number;
}

/** What the pipelines said about one name@version, whatever the order their events arrived in. */
export interface Confirmation {
  /** Some pipeline applied it: one is enough, and it wins over any rejection. */
  applied: boolean;
  deleted: boolean;
  /** When the first config_applied arrived (or the first event, while none has). */
  at: number;
  /** The first rejection's reason, kept even after an applied. */
  rejected: string | null;
  instance: string;
}

export interface OptimisticState {
  changes: Record<string, Change>;
  /** name@version → the first confirmation seen. */
  confirmations: Record<string, Confirmation>;
  confirmationOrder: string[];
  seq: number;
}

export const initialOptimisticState: OptimisticState = {
  changes: dict<Change>(),
  confirmations: dict<Confirmation>(),
  confirmationOrder: [],
  seq: 0,
};

export interface ApplyPayload {
  name: string;
  kind: ChangeKind;
  config: JsonObject | null;
  reason: string;
  baseVersion: number | null;
  previous: StoredConfig | null;
  revertTo?: number;
  at: number;
}

export const confirmationKey = (name: string, version: number): string => `${name}@${version}`;

/**
 * Applies what the pipelines said to a change with that version. One rule whatever the order:
 * any config_applied makes it live; a rejection alone fails it; a rejection next to an applied
 * leaves it live and is shown.
 */
function settle(change: Change, c: Confirmation): void {
  if (change.state === "conflict") return;
  if (c.rejected !== null) change.rejected = c.rejected;
  if (c.applied) {
    if (change.state !== "live") {
      change.state = "live";
      change.confirmedAt = c.at;
      change.elapsedMs = c.at - change.startedAt;
    }
    return;
  }
  if (change.state === "pending" || change.state === "unconfirmed") change.state = "failed";
}

function findConfirmation(state: OptimisticState, change: Change): Confirmation | null {
  if (change.version !== null) return own(state.confirmations, confirmationKey(change.name, change.version)) ?? null;
  return null;
}

const CONFIG_TYPES: ReadonlySet<string> = new Set<ConfigEvent["type"]>(["config_applied", "config_rejected"]);

export const optimisticSlice = createSlice({
  name: "optimistic",
  initialState: initialOptimisticState,
  reducers: {
    applyStarted(state, action: PayloadAction<ApplyPayload>) {
      const p = action.payload;
      state.seq += 1;
      state.changes[p.name] = {
        name: p.name,
        kind: p.kind,
        config: p.config,
        reason: p.reason,
        baseVersion: p.baseVersion,
        revertTo: p.revertTo,
        previous: p.previous,
        state: "pending",
        version: null,
        stored: null,
        startedAt: p.at,
        confirmedAt: null,
        elapsedMs: null,
        error: null,
        rejected: null,
        missed: false,
        seq: state.seq,
      };
    },
    /** The HTTP answer: `version` is the stored version (for a delete, the base version + 1). */
    httpSucceeded(state, action: PayloadAction<{ name: string; seq: number; version: number; stored: StoredConfig | null }>) {
      const change = own(state.changes, action.payload.name);
      if (!change || change.seq !== action.payload.seq) return;
      change.version = action.payload.version;
      change.stored = action.payload.stored;
      const c = findConfirmation(state, change);
      if (c) settle(change, c);
    },
    httpFailed(state, action: PayloadAction<{ name: string; seq: number; error: ApiError }>) {
      const change = own(state.changes, action.payload.name);
      if (!change || change.seq !== action.payload.seq) return;
      const error = action.payload.error;
      change.error = error;
      change.state = error.status === 409 ? "conflict" : "failed";
    },
    configEventReceived(state, action: PayloadAction<{ event: ConfigEvent; at: number }>) {
      const { event, at } = action.payload;
      // The event comes off the wire: an unknown type or a missing field settles nothing.
      if (!CONFIG_TYPES.has(event.type)) return;
      if (typeof event.name !== "string" || typeof event.version !== "number" || typeof event.instance !== "string") return;
      const applied = event.type === "config_applied";
      const rejected = applied ? null : typeof event.reason === "string" && event.reason ? event.reason : "rejected by a pipeline";
      const key = confirmationKey(event.name, event.version);
      const existing = own(state.confirmations, key);
      let confirmation: Confirmation;
      if (existing) {
        if (applied && !existing.applied) {
          existing.applied = true;
          existing.at = at;
          existing.instance = event.instance;
        }
        if (existing.rejected === null) existing.rejected = rejected;
        confirmation = existing;
      } else {
        confirmation = { applied, deleted: event.deleted === true, at, rejected, instance: event.instance };
        state.confirmationOrder.push(key);
        state.confirmations[key] = confirmation;
        while (state.confirmationOrder.length > MAX_CONFIRMATIONS) {
          const oldest = state.confirmationOrder.shift();
          if (oldest !== undefined) delete state.confirmations[oldest];
        }
      }
      const change = own(state.changes, event.name);
      if (change && change.version === event.version) settle(change, confirmation);
    },
    /**
     * The stream may have lost config events (a reconnect without a resume point, a gap, resume
     * refused): a change still waiting may never hear its confirmation, so say so instead of
     * waiting silently.
     */
    confirmationsMissed(state) {
      for (const change of Object.values(state.changes)) {
        if (change.state !== "pending" && change.state !== "unconfirmed") continue;
        change.missed = true;
        if (change.version !== null) change.state = "unconfirmed";
      }
    },
    /** Ten seconds without a confirmation: warn, keep waiting (a later confirmation still settles it). */
    confirmTimedOut(state, action: PayloadAction<{ name: string; seq: number }>) {
      const change = own(state.changes, action.payload.name);
      if (change && change.seq === action.payload.seq && change.state === "pending") change.state = "unconfirmed";
    },
    changeDismissed(state, action: PayloadAction<string>) {
      delete state.changes[action.payload];
    },
  },
});

export const {
  applyStarted,
  httpSucceeded,
  httpFailed,
  configEventReceived,
  confirmationsMissed,
  confirmTimedOut,
  changeDismissed,
} = optimisticSlice.actions;

export type BadgeState = "live" | "pending" | "failed" | "conflict" | "unconfirmed";

export interface ListRow {
  name: string;
  /** What the row shows: the optimistic config while pending, the previous one after a rollback. */
  entry: StoredConfig | null;
  /** What the server lists under the name (never a locally made entry): the base for another change. */
  server: StoredConfig | null;
  state: BadgeState;
  change: Change | null;
}

function newest(a: StoredConfig | null, b: StoredConfig | null): StoredConfig | null {
  if (!a) return b;
  if (!b) return a;
  return b.version >= a.version ? b : a;
}

/**
 * The list as the user sees it: the server's entries with every change in flight laid over them.
 * A pending or unconfirmed change shows its new config at once; a rolled-back one (conflict,
 * failure) shows the entry as it was before; a confirmed delete disappears.
 *
 * A finished change never hides what the server lists later: its entry wins once its version
 * reaches the change's (versions are never reused, not even by a re-create), and a list fetched
 * after the confirmation that lacks the name means someone deleted it. `serverAt` is when the
 * list was fetched (RTK Query's fulfilledTimeStamp), on the same clock as `confirmedAt`.
 */
export function mergeList(server: StoredConfig[], changes: Record<string, Change>, tenant = "", serverAt?: number): ListRow[] {
  const rows = new Map<string, ListRow>();
  for (const entry of server) rows.set(entry.name, { name: entry.name, entry, server: entry, state: "live", change: null });
  for (const change of Object.values(changes)) {
    const serverEntry = rows.get(change.name)?.server ?? null;
    const fetchedSinceConfirmed = serverAt !== undefined && change.confirmedAt !== null && serverAt > change.confirmedAt;
    if (change.kind === "delete") {
      if (change.state === "live") {
        // Re-created since (a higher version than the delete's): the new entry shows.
        if (serverEntry && change.version !== null && serverEntry.version > change.version) continue;
        rows.delete(change.name);
        continue;
      }
      const entry = change.state === "pending" || change.state === "unconfirmed" ? serverEntry : newest(change.previous, serverEntry);
      rows.set(change.name, { name: change.name, entry, server: serverEntry, state: change.state, change });
      continue;
    }
    if (change.state === "pending" || change.state === "unconfirmed" || change.state === "live") {
      if (serverEntry && change.version !== null) {
        // The server already lists a newer version than the change (another writer after us).
        if (serverEntry.version > change.version) continue;
        if (serverEntry.version === change.version && change.state === "live") {
          rows.set(change.name, { name: change.name, entry: serverEntry, server: serverEntry, state: "live", change });
          continue;
        }
      }
      // Confirmed, then deleted by someone else: the list fetched since no longer has it.
      if (!serverEntry && change.state === "live" && fetchedSinceConfirmed) continue;
      const base = change.stored ?? serverEntry ?? change.previous;
      const entry: StoredConfig = {
        name: change.name,
        tenant: base?.tenant ?? tenant,
        version: change.version ?? (change.baseVersion ?? 0) + 1,
        updated_by: change.stored?.updated_by ?? base?.updated_by ?? "you",
        updated_at: change.stored?.updated_at ?? change.startedAt,
        reason: change.reason,
        config: change.stored?.config ?? change.config ?? {},
      };
      rows.set(change.name, { name: change.name, entry, server: serverEntry, state: change.state, change });
    } else {
      // Rolled back: the entry as it was (none for a failed create), or the server's if it is newer
      // (after a conflict the list refetches the other writer's version), with the reason on the row.
      const entry = newest(change.previous, serverEntry);
      rows.set(change.name, { name: change.name, entry, server: serverEntry, state: change.state, change });
    }
  }
  return [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
}
