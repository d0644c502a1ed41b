// The guided mode: four steps (series, what "bad" looks like, sensitivity with a preview, review).
import { useEffect, useRef } from "react";
import { useAppDispatch, useAppSelector } from "../../app/hooks";
import { fieldSet, guidedSet, pretty, stepSet, type Choice, type Draft } from "../draftSlice";
import { LabelsEditor, TextField } from "../fields";
import { PreviewChart } from "../PreviewChart";
import { SeriesSearch } from "../SeriesSearch";
import { useDebouncedPreview } from "../usePreview";
import { alertFor, CHOICES, detectorsFor, GUIDED_ENSEMBLE } from "./mapping";

const TITLES = ["Which series?", "What does “bad” look like?", "How sensitive?", "Review"];

export function Wizard({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const heading = useRef<HTMLHeadingElement>(null);
  const step = draft.step;
  const first = useRef(true);
  useEffect(() => {
    // Focus follows the step (not on first render, so opening the editor does not jump).
    if (first.current) {
      first.current = false;
      return;
    }
    heading.current?.focus();
  }, [step]);

  return (
    <section className="wizard" data-testid="wizard-step" data-step={step} aria-labelledby="wizard-heading">
      <ol className="steps" aria-label="steps">
        {TITLES.map((t, i) => (
          <li key={t} className={i + 1 === step ? "current" : i + 1 < step ? "done" : ""} aria-current={i + 1 === step ? "step" : undefined}>
            {i + 1}. {t}
          </li>
        ))}
      </ol>
      <h3 id="wizard-heading" ref={heading} tabIndex={-1}>
        Step {step} of 4: {TITLES[step - 1]}
      </h3>
      {step === 1 && <StepSeries />}
      {step === 2 && <StepBad draft={draft} />}
      {step === 3 && <StepSensitivity draft={draft} />}
      {step === 4 && (
        <div>
          <p>This is the configuration that Apply sends:</p>
          <pre className="json" tabIndex={0} aria-label="the configuration as JSON">{pretty(draft.config)}</pre>
        </div>
      )}
      <div className="wizard-nav">
        <button type="button" className="secondary" data-testid="wizard-back" disabled={step === 1} onClick={() => dispatch(stepSet(step - 1))}>
          Back
        </button>
        {step < 4 && (
          <button type="button" data-testid="wizard-next" onClick={() => dispatch(stepSet(step + 1))}>
            Next
          </button>
        )}
      </div>
    </section>
  );
}

function StepSeries() {
  return (
    <div className="grid-2">
      <div>
        <TextField pointer="/config/match/metric" label="Metric name glob" testId="field-metric" placeholder="http_latency_*" hint="* matches anything, ? one character" />
        <LabelsEditor />
      </div>
      <SeriesSearch />
    </div>
  );
}

function StepBad({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const toggle = (id: Choice, on: boolean) => {
    const choices = on ? [...draft.choices.filter((c) => c !== id), id] : draft.choices.filter((c) => c !== id);
    dispatch(guidedSet({ choices }));
    dispatch(fieldSet({ pointer: "/config/detectors", value: detectorsFor(choices) }));
    dispatch(fieldSet({ pointer: "/config/ensemble", value: GUIDED_ENSEMBLE }));
  };
  return (
    <fieldset className="choices">
      <legend>Alert me on</legend>
      {CHOICES.map((c) => (
        <div key={c.id} className="field check">
          <input id={`choice-${c.id}`} type="checkbox" checked={draft.choices.includes(c.id)} onChange={(e) => toggle(c.id, e.target.checked)} />
          <label htmlFor={`choice-${c.id}`}>
            {c.label} <span className="muted">— {c.hint}</span>
          </label>
        </div>
      ))}
    </fieldset>
  );
}

function StepSensitivity({ draft }: { draft: Draft }) {
  const dispatch = useAppDispatch();
  const name = useAppSelector((s) => s.draft.draft?.name ?? "");
  const preview = useDebouncedPreview(name, draft.config, true);
  const series = preview.kind === "ok" ? preview.data.series?.[0] : undefined;
  return (
    <div>
      <div className="field">
        <label htmlFor="sensitivity">Sensitivity: {draft.sensitivity} of 5</label>
        <div className="slider">
          <span aria-hidden="true">fewer alerts</span>
          <input
            id="sensitivity"
            type="range"
            min={1}
            max={5}
            step={1}
            value={draft.sensitivity}
            data-testid="sensitivity"
            aria-valuetext={`${draft.sensitivity}: ${draft.sensitivity <= 2 ? "fewer alerts" : draft.sensitivity >= 4 ? "more alerts" : "balanced"}`}
            onChange={(e) => {
              const sensitivity = Number(e.target.value);
              dispatch(guidedSet({ sensitivity }));
              dispatch(fieldSet({ pointer: "/config/alert", value: alertFor(sensitivity) }));
            }}
          />
          <span aria-hidden="true">more alerts</span>
        </div>
      </div>
      <div aria-live="polite" className="preview">
        {preview.kind === "loading" && <p className="muted">Previewing…</p>}
        {preview.kind === "unavailable" && <p className="muted">preview not available (this gateway has no preview data)</p>}
        {preview.kind === "error" && <p className="error">{preview.message}</p>}
        {preview.kind === "ok" && (
          <>
            <p>
              Over the last day the draft would have raised <strong>{preview.data.draft.count}</strong> events
              {preview.data.live ? `, the live version ${preview.data.live.count}` : ""}.
            </p>
            {series ? <PreviewChart series={series} events={preview.data.draft.events} /> : <p className="muted">No series data in the preview answer.</p>}
          </>
        )}
      </div>
    </div>
  );
}
