// The configuration API as RTK Query endpoints (reads and previews; writes go through the optimistic listener).
import { createApi, fetchBaseQuery } from "@reduxjs/toolkit/query/react";
import { historyResponse, presets, previewResponse, seriesResponse, storedConfigs } from "./shapes";
import type { HistoryResponse, JsonObject, Preset, PreviewResponse, SeriesResponse, StoredConfig } from "./types";

interface TokenHolder {
  auth: { token: string | null };
}

export interface SeriesQuery {
  metric: string;
  labels: Array<[string, string]>;
  windowMs?: number;
}

export interface PreviewArgs {
  name: string;
  config: JsonObject;
  from: number;
  to: number;
  warmup_ms?: number;
}

export const api = createApi({
  reducerPath: "api",
  baseQuery: fetchBaseQuery({
    baseUrl: "/api/v1",
    prepareHeaders: (headers, { getState }) => {
      const token = (getState() as TokenHolder).auth.token;
      if (token) headers.set("Authorization", `Bearer ${token}`);
      return headers;
    },
  }),
  tagTypes: ["Detectors", "History"],
  endpoints: (build) => ({
    listDetectors: build.query<StoredConfig[], void>({
      query: () => "/detectors",
      transformResponse: (body: unknown) => storedConfigs(body),
      providesTags: ["Detectors"],
    }),
    history: build.query<HistoryResponse, string>({
      query: (name) => `/detectors/${encodeURIComponent(name)}/history`,
      transformResponse: (body: unknown) => historyResponse(body),
      providesTags: (_r, _e, name) => [{ type: "History", id: name }, "Detectors"],
    }),
    presets: build.query<Preset[], void>({
      query: () => "/presets",
      transformResponse: (body: unknown) => presets(body),
    }),
    series: build.query<SeriesResponse, SeriesQuery>({
      query: ({ metric, labels, windowMs }) => {
        const params = new URLSearchParams();
        if (metric) params.set("metric", metric);
        for (const [k, v] of labels) if (k) params.append("label", `${k}=${v}`);
        if (windowMs) params.set("window_ms", String(windowMs));
        return `/series?${params.toString()}`;
      },
      transformResponse: (body: unknown) => seriesResponse(body),
    }),
    preview: build.mutation<PreviewResponse, PreviewArgs>({
      query: ({ name, ...body }) => ({
        url: `/detectors/${encodeURIComponent(name || "draft")}/preview`,
        method: "POST",
        body,
      }),
      transformResponse: (body: unknown) => previewResponse(body),
    }),
  }),
});

export const { useListDetectorsQuery, useHistoryQuery, usePresetsQuery, useLazySeriesQuery, usePreviewMutation } = api;

/** The status of an RTK Query error, for telling 501 (not configured) from other failures. */
export function errorStatus(error: unknown): number | string | null {
  if (typeof error === "object" && error !== null && "status" in error) {
    const status = (error as { status: unknown }).status;
    if (typeof status === "number" || typeof status === "string") return status;
  }
  return null;
}
