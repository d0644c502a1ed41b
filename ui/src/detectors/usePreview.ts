// Runs the preview API for the draft (over the last day of data) and says plainly when it is not available.
import { useCallback, useEffect, useRef, useState } from "react";
import { errorStatus, useLazySeriesQuery, usePreviewMutation } from "../api/api";
import type { JsonObject, PreviewResponse } from "../api/types";

export type PreviewStatus =
  | { kind: "idle" }
  | { kind: "loading" }
  | { kind: "ok"; data: PreviewResponse }
  | { kind: "unavailable" }
  | { kind: "error"; message: string };

const DAY = 24 * 3600 * 1000;

/** The metric glob of a draft, for asking where its data ends. */
function metricOf(config: JsonObject): string {
  const match = config.match;
  if (match && typeof match === "object" && !Array.isArray(match) && typeof match.metric === "string") return match.metric;
  return "*";
}

export function usePreview() {
  const [trigger] = usePreviewMutation();
  const [findSeries] = useLazySeriesQuery();
  const [status, setStatus] = useState<PreviewStatus>({ kind: "idle" });
  const latest = useRef(0);
  const run = useCallback(
    async (name: string, config: JsonObject) => {
      const ticket = ++latest.current;
      setStatus({ kind: "loading" });
      // "The last day" is the last day of the preview data, which is not always now: a file of
      // recorded points ends in the past, the demo's generator runs ahead of the clock. The
      // series search answers with where the data ends (its newest point); without one, now.
      const found = await findSeries({ metric: metricOf(config), labels: [], windowMs: 1 }, false);
      if (ticket !== latest.current) return;
      const to = found.data?.to ?? Date.now();
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
    [trigger, findSeries],
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
