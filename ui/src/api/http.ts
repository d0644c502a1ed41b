// A thin fetch wrapper for the writes the optimistic updater makes: typed outcomes, no throwing.
import type { ApiError, JsonValue, StoredConfig } from "./types";

export type HttpOutcome<T> = { ok: true; status: number; body: T } | { ok: false; error: ApiError };

export interface WriteRequest {
  method: "POST" | "PUT" | "DELETE";
  path: string;
  body?: JsonValue;
  headers?: Record<string, string>;
}

/** What the optimistic listener needs from the network; tests pass a fake. */
export type Writer = (token: string | null, request: WriteRequest) => Promise<HttpOutcome<StoredConfig | null>>;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Reads an API refusal (`{"code","message",...}`) into an ApiError, whatever the body holds. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isObject(body)) {
    const error: ApiError = {
      status,
      message: typeof body.message === "string" ? body.message : `HTTP ${status}`,
    };
    if (typeof body.code === "string") error.code = body.code;
    if (Array.isArray(body.errors)) {
      error.errors = body.errors.filter(isObject).map((e) => ({
        pointer: typeof e.pointer === "string" ? e.pointer : "",
        message: typeof e.message === "string" ? e.message : "invalid",
      }));
    }
    if (isObject(body.current)) error.current = body.current as unknown as StoredConfig;
    return error;
  }
  return { status, message: `HTTP ${status}` };
}

/** A write the server has not answered by then fails as a network failure (it may still have landed: the list refetches). */
export const WRITE_TIMEOUT_MS = 30000;

export const fetchWriter: Writer = async (token, request) => {
  const headers: Record<string, string> = { ...request.headers };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (request.body !== undefined) headers["Content-Type"] = "application/json";
  // Regression: a hung PUT stayed "the server has not answered yet" forever.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), WRITE_TIMEOUT_MS);
  let response: Response;
  let text: string;
  try {
    response = await fetch(request.path, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: controller.signal,
    });
    text = await response.text().catch(() => "");
  } catch (e) {
    const message = controller.signal.aborted
      ? `no answer within ${WRITE_TIMEOUT_MS / 1000} s`
      : e instanceof Error
        ? e.message
        : "network error";
    return { ok: false, error: { status: "network", message } };
  } finally {
    clearTimeout(timer);
  }
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) return { ok: false, error: toApiError(response.status, body) };
  return { ok: true, status: response.status, body: isObject(body) ? (body as unknown as StoredConfig) : null };
};
