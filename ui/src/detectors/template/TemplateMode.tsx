// The template mode: start from a preset, fill in its matcher, compare draft and live on a day of data.
import { usePresetsQuery } from "../../api/api";
import type { Preset } from "../../api/types";
import { useAppDispatch } from "../../app/hooks";
import { presetChosen, type Draft } from "../draftSlice";
import { LabelsEditor, TextField } from "../fields";
import { usePreview } from "../usePreview";

const presetConfig = (p: Preset) => p.config ?? p.document ?? {};

export function TemplateMode({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const { data: presets, error, isLoading } = usePresetsQuery();
  const { status, run } = usePreview();
  return (
    <div className="template-mode">
      <fieldset className="presets">
        <legend>Start from a preset</legend>
        {isLoading && <p className="muted">Loading presets…</p>}
        {error && <p className="error">Could not load the presets.</p>}
        <div className="preset-grid">
          {(presets ?? []).map((p) => (
            <label key={p.name} className={`preset-card${draft.preset === p.name ? " chosen" : ""}`}>
              <input
                type="radio"
                name="preset"
                value={p.name}
                data-testid={`preset-${p.name}`}
                checked={draft.preset === p.name}
                onChange={() => dispatch(presetChosen({ name: p.name, config: presetConfig(p) }))}
              />
              <span className="preset-title">{p.title ?? p.name}</span>
              <span className="small">
                <strong>Catches:</strong> {p.catches}
              </span>
              <span className="small muted">
                <strong>Ignores:</strong> {p.ignores}
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      <div className="grid-2">
        <div>
          <TextField pointer="/config/match/metric" label="Metric name glob" testId="field-metric" placeholder="http_latency_*" />
          <LabelsEditor />
        </div>
        <div>
          <button type="button" className="secondary" onClick={() => void run(draft.name, draft.config)}>
            Preview the last day
          </button>
          <div aria-live="polite">
            {status.kind === "loading" && <p className="muted">Previewing…</p>}
            {status.kind === "unavailable" && <p className="muted">preview not available (this gateway has no preview data)</p>}
            {status.kind === "error" && <p className="error">{status.message}</p>}
            {status.kind === "ok" && (
              <table className="compact">
                <caption>Events over the last day</caption>
                <tbody>
                  <tr>
                    <th scope="row">draft</th>
                    <td className="num">
                      {status.data.draft.count}
                      {status.data.draft.truncated ? " (truncated)" : ""}
                    </td>
                  </tr>
                  <tr>
                    <th scope="row">live</th>
                    <td className="num">{status.data.live ? status.data.live.count : "—"}</td>
                  </tr>
                </tbody>
              </table>
            )}
          </div>
        </div>
      </div>
    </div>
  );
}
