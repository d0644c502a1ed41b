// The expert mode: every parameter as a form field (by JSON pointer), the raw JSON, the diff against live and the history.
import { useId, useState } from "react";
import type { JsonObject, JsonValue, StoredConfig } from "../../api/types";
import { useAppDispatch } from "../../app/hooks";
import { fieldSet, pretty, rawEdited, type Draft } from "../draftSlice";
import { CheckField, LabelsEditor, NumberField, SelectField, TextField } from "../fields";
import { lineDiff } from "./diff";
import { History } from "./History";
import { ALERT_PARAMS, CALIBRATION_METHODS, CALIBRATION_PARAMS, DETECTOR_KINDS, ENSEMBLE_METHODS, INPUTS } from "./params";

function obj(x: JsonValue | undefined): JsonObject {
  return x && typeof x === "object" && !Array.isArray(x) ? x : {};
}

export function ExpertMode({ draft, live }: { draft: Draft; live: StoredConfig | null }) {
  return (
    <div className="expert">
      <fieldset>
        <legend>Description and matcher</legend>
        <TextField pointer="/config/description" label="Description" />
        <TextField pointer="/config/match/metric" label="Metric name glob" testId="field-metric" placeholder="* (every metric)" />
        <LabelsEditor />
      </fieldset>
      <Detectors draft={draft} />
      <fieldset>
        <legend>Features</legend>
        <NumberField pointer="/config/features/alpha" label="EWMA smoothing (alpha)" placeholder="0.05" />
      </fieldset>
      <fieldset>
        <legend>Ensemble</legend>
        <div className="param-grid">
          <SelectField pointer="/config/ensemble/method" label="method" options={ENSEMBLE_METHODS} placeholder="mean" />
          <CheckField pointer="/config/ensemble/calibrate" label="calibrate each detector's score" />
          <NumberField pointer="/config/ensemble/suppress_half_life" label="suppress_half_life" placeholder="0" />
          <SelectField pointer="/config/ensemble/calibration/method" label="calibration method" options={CALIBRATION_METHODS} placeholder="envelope" />
          {CALIBRATION_PARAMS.map((p) => (
            <NumberField key={p.name} pointer={`/config/ensemble/calibration/${p.name}`} label={`calibration ${p.name}`} placeholder={String(p.default)} integer={p.kind === "integer"} />
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>Alert policy</legend>
        <div className="param-grid">
          {ALERT_PARAMS.map((p) => (
            <NumberField key={p.name} pointer={`/config/alert/${p.name}`} label={p.name} placeholder={String(p.default)} integer={p.kind === "integer"} />
          ))}
        </div>
      </fieldset>
      <RawJson draft={draft} />
      <Diff draft={draft} live={live} />
      {live && <History name={live.name} live={live} />}
    </div>
  );
}

function Detectors({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const [kind, setKind] = useState("range");
  const addId = useId();
  const list = Array.isArray(draft.config.detectors) ? draft.config.detectors : [];
  const setList = (next: JsonValue[]) => dispatch(fieldSet({ pointer: "/config/detectors", value: next }));
  const move = (from: number, to: number) => {
    const next = [...list];
    const [item] = next.splice(from, 1);
    if (item !== undefined) next.splice(to, 0, item);
    setList(next);
  };
  return (
    <fieldset>
      <legend>Detectors</legend>
      {list.length === 0 && <p className="muted">No detectors: add at least one.</p>}
      <ol className="detector-specs">
        {list.map((d, index) => {
          const spec = obj(d);
          const k = typeof spec.kind === "string" ? spec.kind : "";
          const known = DETECTOR_KINDS[k] ?? [];
          const extra = Object.keys(spec).filter((p) => p !== "kind" && !known.some((s) => s.name === p));
          return (
            <li key={index} className="detector-spec">
              <div className="spec-head">
                <SelectField pointer={`/config/detectors/${index}/kind`} label={`Detector ${index + 1} kind`} options={Object.keys(DETECTOR_KINDS)} />
                <div className="row-actions">
                  <button type="button" className="secondary small" disabled={index === 0} onClick={() => move(index, index - 1)} aria-label={`Move detector ${index + 1} up`}>
                    Up
                  </button>
                  <button type="button" className="secondary small" disabled={index === list.length - 1} onClick={() => move(index, index + 1)} aria-label={`Move detector ${index + 1} down`}>
                    Down
                  </button>
                  <button type="button" className="secondary small" onClick={() => setList(list.filter((_, i) => i !== index))} aria-label={`Remove detector ${index + 1}`}>
                    Remove
                  </button>
                </div>
              </div>
              <div className="param-grid">
                {known.map((p) =>
                  p.kind === "input" ? (
                    <SelectField key={p.name} pointer={`/config/detectors/${index}/${p.name}`} label={p.name} options={INPUTS} placeholder={String(p.default)} />
                  ) : (
                    <NumberField key={p.name} pointer={`/config/detectors/${index}/${p.name}`} label={p.name} placeholder={String(p.default)} integer={p.kind === "integer"} />
                  ),
                )}
                {extra.map((p) => (
                  <TextField key={p} pointer={`/config/detectors/${index}/${p}`} label={`${p} (unknown to this UI)`} />
                ))}
              </div>
            </li>
          );
        })}
      </ol>
      <div className="add-row">
        <label htmlFor={addId}>New detector kind</label>
        <select id={addId} value={kind} onChange={(e) => setKind(e.target.value)}>
          {Object.keys(DETECTOR_KINDS).map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <button type="button" className="secondary" onClick={() => setList([...list, { kind }])}>
          Add detector
        </button>
      </div>
    </fieldset>
  );
}

function RawJson({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const id = useId();
  return (
    <section className="raw" aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>Raw JSON</h3>
      <label htmlFor={id} className="muted small">
        The configuration as JSON; edits here and in the form stay in sync.
      </label>
      <textarea
        id={id}
        data-testid="raw-json"
        data-pointer="/config"
        rows={16}
        spellCheck={false}
        value={draft.rawText}
        aria-invalid={draft.rawError ? "true" : undefined}
        onChange={(e) => dispatch(rawEdited(e.target.value))}
      />
      {draft.rawError && (
        <p className="field-error" role="alert">
          Not applied to the form: {draft.rawError}
        </p>
      )}
    </section>
  );
}

function Diff({ draft, live }: { draft: Draft; live: StoredConfig | null }) {
  const lines = lineDiff(live ? pretty(live.config) : "", pretty(draft.config));
  const changed = lines.filter((l) => l.op !== "same").length;
  return (
    <section aria-labelledby="h-diff">
      <h3 id="h-diff">Changes against the live version{live ? ` (${live.version})` : ""}</h3>
      <p className="muted small">{changed === 0 ? "No changes." : `${changed} lines differ.`}</p>
      <pre className="diff" data-testid="diff" tabIndex={0} aria-label="line diff against the live version">
        {lines.map((l, i) => (
          <span key={i} className={`diff-${l.op}`}>
            {l.op === "add" ? "+ " : l.op === "del" ? "- " : "  "}
            {l.text}
            {"\n"}
          </span>
        ))}
      </pre>
    </section>
  );
}
