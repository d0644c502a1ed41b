// Form inputs bound to the draft by JSON pointer, each showing the API's 422 error for its pointer.
import { useId, type ReactNode } from "react";
import type { JsonObject, JsonValue } from "../api/types";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { fieldSet } from "./draftSlice";
import { getAt, parsePointer } from "./pointer";

/** The value at a request-body pointer (/name, /reason, /config/...). */
export function useDraftValue(pointer: string): JsonValue | undefined {
  return useAppSelector((s) => {
    const d = s.draft.draft;
    if (!d) return undefined;
    if (pointer === "/name") return d.name;
    if (pointer === "/reason") return d.reason;
    return getAt(d.config, parsePointer(pointer).slice(1));
  });
}

export function useFieldError(pointer: string): string | null {
  return useAppSelector((s) => {
    const errors = s.draft.draft?.errors ?? [];
    const found = errors.filter((e) => e.pointer === pointer).map((e) => e.message);
    return found.length ? found.join("; ") : null;
  });
}

interface FieldProps {
  pointer: string;
  label: ReactNode;
  testId?: string;
  hint?: string;
}

function Wrap({ id, label, error, children, hint }: { id: string; label: ReactNode; error: string | null; children: ReactNode; hint?: string }) {
  return (
    <div className={`field${error ? " has-error" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <span className="hint">{hint}</span>}
      {error && (
        <span className="field-error" id={`${id}-error`}>
          {error}
        </span>
      )}
    </div>
  );
}

export function TextField({ pointer, label, testId, hint, placeholder, disabled }: FieldProps & { placeholder?: string; disabled?: boolean }) {
  const id = useId();
  const dispatch = useAppDispatch();
  const value = useDraftValue(pointer);
  const error = useFieldError(pointer);
  return (
    <Wrap id={id} label={label} error={error} hint={hint}>
      <input
        id={id}
        type="text"
        data-testid={testId}
        data-pointer={pointer}
        value={typeof value === "string" ? value : value === undefined || value === null ? "" : String(value)}
        placeholder={placeholder}
        disabled={disabled}
        spellCheck={false}
        autoComplete="off"
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => dispatch(fieldSet({ pointer, value: e.target.value }))}
      />
    </Wrap>
  );
}

/** A number: empty means "leave it out" (the default, shown as placeholder, applies). */
export function NumberField({ pointer, label, placeholder, integer }: FieldProps & { placeholder?: string; integer?: boolean }) {
  const id = useId();
  const dispatch = useAppDispatch();
  const value = useDraftValue(pointer);
  const error = useFieldError(pointer);
  return (
    <Wrap id={id} label={label} error={error}>
      <input
        id={id}
        type="number"
        step={integer ? 1 : "any"}
        data-pointer={pointer}
        value={typeof value === "number" ? String(value) : typeof value === "string" ? value : ""}
        placeholder={placeholder}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => {
          const text = e.target.value;
          const parsed = Number(text);
          dispatch(fieldSet({ pointer, value: text === "" ? undefined : Number.isFinite(parsed) ? parsed : text }));
        }}
      />
    </Wrap>
  );
}

export function SelectField({ pointer, label, options, placeholder }: FieldProps & { options: string[]; placeholder?: string }) {
  const id = useId();
  const dispatch = useAppDispatch();
  const value = useDraftValue(pointer);
  const error = useFieldError(pointer);
  return (
    <Wrap id={id} label={label} error={error}>
      <select
        id={id}
        data-pointer={pointer}
        value={typeof value === "string" ? value : ""}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => dispatch(fieldSet({ pointer, value: e.target.value === "" ? undefined : e.target.value }))}
      >
        <option value="">{placeholder ? `default (${placeholder})` : "default"}</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </Wrap>
  );
}

export function CheckField({ pointer, label }: FieldProps) {
  const id = useId();
  const dispatch = useAppDispatch();
  const value = useDraftValue(pointer);
  const error = useFieldError(pointer);
  return (
    <div className={`field check${error ? " has-error" : ""}`}>
      <input
        id={id}
        type="checkbox"
        data-pointer={pointer}
        checked={value === true}
        aria-invalid={error ? "true" : undefined}
        onChange={(e) => dispatch(fieldSet({ pointer, value: e.target.checked }))}
      />
      <label htmlFor={id}>{label}</label>
      {error && <span className="field-error">{error}</span>}
    </div>
  );
}

/** Label globs as rows of key and value, added and removed freely. */
export function LabelsEditor() {
  const dispatch = useAppDispatch();
  const labels = useDraftValue("/config/match/labels");
  const obj: JsonObject = labels && typeof labels === "object" && !Array.isArray(labels) ? labels : {};
  const entries = Object.entries(obj);
  const setAll = (next: Array<[string, JsonValue]>) => dispatch(fieldSet({ pointer: "/config/match/labels", value: Object.fromEntries(next) }));
  const error = useFieldError("/config/match/labels");
  return (
    <fieldset className="labels">
      <legend>Label globs</legend>
      {entries.length === 0 && <p className="muted small">Any labels.</p>}
      {entries.map(([k, v], index) => (
        <LabelRow
          key={index}
          index={index}
          k={k}
          v={typeof v === "string" ? v : String(v)}
          onChange={(nk, nv) => setAll(entries.map((e, i) => (i === index ? [nk, nv] : e)))}
          onRemove={() => setAll(entries.filter((_, i) => i !== index))}
        />
      ))}
      <button type="button" className="secondary" onClick={() => setAll([...entries, [uniqueKey(obj), "*"]])}>
        Add label
      </button>
      {error && <span className="field-error">{error}</span>}
    </fieldset>
  );
}

function uniqueKey(obj: JsonObject): string {
  let n = 1;
  while (`label${n}` in obj) n++;
  return `label${n}`;
}

function LabelRow({ index, k, v, onChange, onRemove }: { index: number; k: string; v: string; onChange: (k: string, v: string) => void; onRemove: () => void }) {
  const id = useId();
  const error = useFieldError(`/config/match/labels/${k}`);
  return (
    <div className="label-row">
      <label htmlFor={`${id}-k`} className="sr-only">
        Label {index + 1} key
      </label>
      <input id={`${id}-k`} type="text" value={k} spellCheck={false} placeholder="key" data-label-key={index} onChange={(e) => onChange(e.target.value, v)} />
      <span aria-hidden="true">=</span>
      <label htmlFor={`${id}-v`} className="sr-only">
        Label {index + 1} glob
      </label>
      <input
        id={`${id}-v`}
        type="text"
        value={v}
        spellCheck={false}
        placeholder="glob"
        data-pointer={`/config/match/labels/${k}`}
        aria-invalid={error ? "true" : undefined}
        onChange={(e) => onChange(k, e.target.value)}
      />
      <button type="button" className="secondary small" onClick={onRemove} aria-label={`Remove label ${k}`}>
        Remove
      </button>
      {error && <span className="field-error">{error}</span>}
    </div>
  );
}
