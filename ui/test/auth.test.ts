import { describe, expect, it } from "vitest";
import { looksLikeJwt, parseClaims, readToken, TOKEN_KEY } from "../src/app/auth";
import { parseRoute, routeHash } from "../src/app/route";

const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const jwt = (claims: unknown) => `${b64url({ alg: "HS256" })}.${b64url(claims)}.sig`;

describe("token", () => {
  it("reads tenant, user and scopes given as a string or a list", () => {
    expect(parseClaims(jwt({ tenant: "acme", sub: "alice", scope: "detectors:read detectors:write" }))).toMatchObject({
      tenant: "acme",
      sub: "alice",
      scopes: ["detectors:read", "detectors:write"],
    });
    expect(parseClaims(jwt({ scope: ["detectors:read"] }))?.scopes).toEqual(["detectors:read"]);
    expect(parseClaims("nonsense")).toBeNull();
    expect(looksLikeJwt("a.b.c")).toBe(true);
    expect(looksLikeJwt("a.b")).toBe(false);
  });

  it("moves a #token= into session storage and out of the address bar", () => {
    history.replaceState(null, "", "/#token=abc.def.ghi");
    sessionStorage.clear();
    expect(readToken(location, history, sessionStorage)).toBe("abc.def.ghi");
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe("abc.def.ghi");
    expect(location.hash).toBe("");
    expect(readToken(location, history, sessionStorage)).toBe("abc.def.ghi");
  });

  it("parses and writes hash routes", () => {
    expect(parseRoute("#/detectors")).toEqual({ view: "detectors" });
    expect(parseRoute("#/detectors/check%2Fout")).toEqual({ view: "editor", name: "check/out" });
    expect(parseRoute("#/new")).toEqual({ view: "editor", name: null });
    expect(parseRoute("")).toEqual({ view: "live" });
    expect(routeHash({ view: "editor", name: "a" })).toBe("#/detectors/a");
  });
});
