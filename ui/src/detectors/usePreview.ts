// Runs the preview API for the draft (over the last day of data) and says plainly when it is not available.
import { useCallback, useEffect, useRef, useState } from "react";
import { errorStatus, usePreviewMutation } from "../api/api";
import type { JsonObject, PreviewResponse } from "../api/types";

export type PreviewStatus =
  | { kind: "idle" }
  | { kind: "loading" }
  | { kind: "ok"; data: PreviewResponse }
  | { kind: "unavailable" }
  | { kind: "error"; message: string };

const DAY = 24 * 3600 * 1000;

export function usePreview() {
  const [trigger] = usePreviewMutation();
  const [status, setStatus] = useState<PreviewStatus>({ kind: "idle" });
  const latest = useRef(0);
  const run = useCallback(
    async (name: string, config: JsonObject) => {
      const ticket = ++latest.current;
      setStatus({ kind: "loading" });
      const to = Date.now();
      const result = await trigger({ name, config, from: to - DAY, to });
      // An older answer arriving after a newer request is dropped.
      if (ticket !== latest.current) return;
      if ("data" in result && result.data) setStatus({ kind: "ok", data: result.data });
      else {
        const status = errorStatus(result.error);
        if (status === 501) setStatus({ kind: "unavailable" });
        else setStatus({ kind: "error", message: `preview failed (${String(status ?? "network")})` });
      }
    },
    [trigger],
  );
  return { status, run };
}

/** Calls the preview ~400 ms after the draft stops changing. */
export function useDebouncedPreview(name: string, config: JsonObject, enabled: boolean) {
  const { status, run } = usePreview();
  const key = JSON.stringify(config);
  useEffect(() => {
    if (!enabled) return;
    const timer = setTimeout(() => void run(name, JSON.parse(key) as JsonObject), 400);
    return () => clearTimeout(timer);
  }, [name, key, enabled, run]);
  return status;
}
