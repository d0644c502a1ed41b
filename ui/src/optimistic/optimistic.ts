// The optimistic updater's pure part: each change in flight (pending → live, or rolled back with a
// reason) and every confirmation the pipelines sent, remembered by name@version so one that
// arrives before the HTTP answer still counts.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { ApiError, ConfigEvent, JsonObject, StoredConfig } from "../api/types";

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
  /** Why a pipeline refused the version (config_rejected). */
  rejected: string | null;
  seq: number;
}

export interface Confirmation {
  type: ConfigEvent["type"];
  deleted: boolean;
  at: number;
  reason: string | null;
  instance: string;
}

export interface OptimisticState {
  changes: Record<string, Change>;
  /** name@version → the first confirmation seen. */
  confirmations: Record<string, Confirmation>;
  confirmationOrder: string[];
  seq: number;
}

export const initialOptimisticState: OptimisticState = { changes: {}, confirmations: {}, confirmationOrder: [], seq: 0 };

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

/** Applies a confirmation to a change waiting for it; returns whether it matched. */
function settle(change: Change, c: Confirmation): void {
  if (c.type === "config_rejected") {
    change.state = "failed";
    change.rejected = c.reason ?? "rejected by a pipeline";
    return;
  }
  change.state = "live";
  change.confirmedAt = c.at;
  change.elapsedMs = c.at - change.startedAt;
}

function findConfirmation(state: OptimisticState, change: Change): Confirmation | null {
  if (change.version !== null) return state.confirmations[confirmationKey(change.name, change.version)] ?? null;
  return null;
}

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
        seq: state.seq,
      };
    },
    /** The HTTP answer: `version` is the stored version (for a delete, the base version + 1). */
    httpSucceeded(state, action: PayloadAction<{ name: string; seq: number; version: number; stored: StoredConfig | null }>) {
      const change = state.changes[action.payload.name];
      if (!change || change.seq !== action.payload.seq) return;
      change.version = action.payload.version;
      change.stored = action.payload.stored;
      const c = findConfirmation(state, change);
      if (c) settle(change, c);
    },
    httpFailed(state, action: PayloadAction<{ name: string; seq: number; error: ApiError }>) {
      const change = state.changes[action.payload.name];
      if (!change || change.seq !== action.payload.seq) return;
      const error = action.payload.error;
      change.error = error;
      change.state = error.status === 409 ? "conflict" : "failed";
    },
    configEventReceived(state, action: PayloadAction<{ event: ConfigEvent; at: number }>) {
      const { event, at } = action.payload;
      if (typeof event.name !== "string" || typeof event.version !== "number") return;
      const key = confirmationKey(event.name, event.version);
      const confirmation: Confirmation = {
        type: event.type,
        deleted: event.deleted === true,
        at,
        reason: event.reason ?? null,
        instance: event.instance,
      };
      // The first confirmation of a version is the one that counts (one pipeline is enough).
      const existing = state.confirmations[key];
      if (!existing || (existing.type === "config_rejected" && event.type === "config_applied")) {
        if (!existing) state.confirmationOrder.push(key);
        state.confirmations[key] = confirmation;
        while (state.confirmationOrder.length > MAX_CONFIRMATIONS) {
          const oldest = state.confirmationOrder.shift();
          if (oldest !== undefined) delete state.confirmations[oldest];
        }
      }
      const change = state.changes[event.name];
      if (!change || (change.state !== "pending" && change.state !== "unconfirmed")) return;
      if (change.version === event.version) settle(change, confirmation);
    },
    /** Ten seconds without a confirmation: warn, keep waiting (a later confirmation still settles it). */
    confirmTimedOut(state, action: PayloadAction<{ name: string; seq: number }>) {
      const change = state.changes[action.payload.name];
      if (change && change.seq === action.payload.seq && change.state === "pending") change.state = "unconfirmed";
    },
    changeDismissed(state, action: PayloadAction<string>) {
      delete state.changes[action.payload];
    },
  },
});

export const { applyStarted, httpSucceeded, httpFailed, configEventReceived, confirmTimedOut, changeDismissed } =
  optimisticSlice.actions;

export type BadgeState = "live" | "pending" | "failed" | "conflict" | "unconfirmed";

export interface ListRow {
  name: string;
  /** What the row shows: the optimistic config while pending, the previous one after a rollback. */
  entry: StoredConfig | null;
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
 */
export function mergeList(server: StoredConfig[], changes: Record<string, Change>, tenant = ""): ListRow[] {
  const rows = new Map<string, ListRow>();
  for (const entry of server) rows.set(entry.name, { name: entry.name, entry, state: "live", change: null });
  for (const change of Object.values(changes)) {
    const serverEntry = rows.get(change.name)?.entry ?? null;
    if (change.kind === "delete") {
      if (change.state === "live") {
        rows.delete(change.name);
        continue;
      }
      const entry = change.state === "pending" || change.state === "unconfirmed" ? serverEntry : newest(change.previous, serverEntry);
      rows.set(change.name, { name: change.name, entry, state: change.state, change });
      continue;
    }
    if (change.state === "pending" || change.state === "unconfirmed" || change.state === "live") {
      // The server may already list a newer version than the change (another writer after us).
      if (serverEntry && change.version !== null && serverEntry.version > change.version) {
        rows.set(change.name, { name: change.name, entry: serverEntry, state: "live", change: null });
        continue;
      }
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
      rows.set(change.name, { name: change.name, entry, state: change.state, change });
    } else {
      // Rolled back: the entry as it was (none for a failed create), or the server's if it is newer
      // (after a conflict the list refetches the other writer's version), with the reason on the row.
      const entry = newest(change.previous, serverEntry);
      rows.set(change.name, { name: change.name, entry, state: change.state, change });
    }
  }
  return [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
}
