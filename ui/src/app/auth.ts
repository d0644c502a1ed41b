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

function globMatches(glob: string, name: string): boolean {
  const escaped = glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`).test(name);
}

/**
 * Whether the token's `channels` (names or globs such as "*") grant the config channel, which
 * carries the confirmations. No claims, or no channels claim to read, gets the benefit of the
 * doubt (the gateway's `forbidden` answer still tells).
 */
export function canSeeConfig(claims: Claims | null): boolean {
  if (!claims || claims.channels.length === 0) return true;
  return claims.channels.some((c) => globMatches(c, "config"));
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

/**
 * What to do with a `#token=` link opened in a tab that already runs: the same token, or one for
 * the same tenant and user, is simply taken; one for another tenant or user replaces the session
 * only if the user agrees (a crafted link silently moved the user into another tenant).
 */
export function acceptLinkToken(fresh: string, current: string | null, ask: (question: string) => boolean): boolean {
  if (current === null || fresh === current) return true;
  const now = parseClaims(current);
  const next = parseClaims(fresh);
  if (now?.tenant === next?.tenant && now?.sub === next?.sub) return true;
  return ask(
    `This link signs in as user ${next?.sub ?? "?"} of tenant ${next?.tenant ?? "?"}, replacing user ${now?.sub ?? "?"} of tenant ${now?.tenant ?? "?"}. Switch?`,
  );
}

/** Takes `#token=` out of the address bar without storing it (the caller decides whether to use it). */
export function takeHashToken(loc: Location, hist: History): string | null {
  const fresh = new URLSearchParams(loc.hash.slice(1)).get("token");
  if (fresh) hist.replaceState(null, "", loc.pathname + loc.search);
  return fresh;
}

/**
 * A `#token=` link opened while the app runs: strips it from the address bar and returns the
 * token to switch to, or null (none, the same one, or the user declined). Nothing is stored
 * here: the store saves the token only once it is taken.
 */
export function linkToken(loc: Location, hist: History, current: string | null, ask: (question: string) => boolean): string | null {
  const fresh = takeHashToken(loc, hist);
  if (!fresh || fresh === current) return null;
  return acceptLinkToken(fresh, current, ask) ? fresh : null;
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
