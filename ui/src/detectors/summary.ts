// Short texts about a configuration: its matcher and description.
import type { JsonObject, JsonValue } from "../api/types";

export function matcherSummary(config: JsonObject | null | undefined): string {
  const match = config?.match;
  if (!match || typeof match !== "object" || Array.isArray(match)) return "every series";
  const metric = typeof match.metric === "string" && match.metric ? match.metric : "*";
  const labels = match.labels && typeof match.labels === "object" && !Array.isArray(match.labels) ? match.labels : {};
  const parts = Object.entries(labels).map(([k, v]: [string, JsonValue]) => `${k}=${String(v)}`);
  return parts.length ? `${metric}{${parts.join(",")}}` : metric;
}

export function description(config: JsonObject | null | undefined): string {
  const d = config?.description;
  return typeof d === "string" ? d : "";
}
