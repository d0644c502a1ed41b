// The JWT: where it comes from (URL fragment or session storage), what it claims, and its slice.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";

export const TOKEN_KEY = "aiops.dashboard.token";

export interface Claims {
  tenant?: string;
  sub?: string;
  exp?: number;
  scopes: string[];
  channels: string[];
}

/** Decodes the payload for display only: the gateway verifies the token itself. */
export function parseClaims(token: string): Claims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const raw: unknown = JSON.parse(atob(padded));
    if (typeof raw !== "object" || raw === null) return null;
    const c = raw as Record<string, unknown>;
    const scope = c.scope;
    const scopes = Array.isArray(scope)
      ? scope.filter((s): s is string => typeof s === "string")
      : typeof scope === "string"
        ? scope.split(" ").filter(Boolean)
        : [];
    const channels = Array.isArray(c.channels) ? c.channels.filter((s): s is string => typeof s === "string") : [];
    return {
      tenant: typeof c.tenant === "string" ? c.tenant : undefined,
      sub: typeof c.sub === "string" ? c.sub : undefined,
      exp: typeof c.exp === "number" ? c.exp : undefined,
      scopes,
      channels,
    };
  } catch {
    return null;
  }
}

/** Whether the token may change configurations (the API decides; this only greys out buttons). */
export function canWrite(claims: Claims | null): boolean {
  return claims?.scopes.includes("detectors:write") ?? false;
}

export function looksLikeJwt(token: string): boolean {
  return token.split(".").length === 3;
}

/**
 * A token in the fragment (#token=...) never reaches a server log; it moves to session storage and
 * out of the address bar before anything else reads the hash (the router uses it afterwards).
 */
export function readToken(loc: Location, hist: History, storage: Storage): string | null {
  const params = new URLSearchParams(loc.hash.slice(1));
  const fromHash = params.get("token");
  if (fromHash) {
    storage.setItem(TOKEN_KEY, fromHash);
    hist.replaceState(null, "", loc.pathname + loc.search);
    return fromHash;
  }
  return storage.getItem(TOKEN_KEY);
}

interface AuthState {
  token: string | null;
  claims: Claims | null;
  error: string | null;
}

const initialState: AuthState = { token: null, claims: null, error: null };

export const authSlice = createSlice({
  name: "auth",
  initialState,
  reducers: {
    tokenSet(state, action: PayloadAction<string>) {
      state.token = action.payload;
      state.claims = parseClaims(action.payload);
      state.error = null;
    },
    tokenCleared(state, action: PayloadAction<string | null>) {
      state.token = null;
      state.claims = null;
      state.error = action.payload;
    },
  },
});

export const { tokenSet, tokenCleared } = authSlice.actions;
