// The editor for one configuration: mode switch over one shared draft, reason, Apply, and what happened to the last Apply.
import { useEffect } from "react";
import { useListDetectorsQuery } from "../api/api";
import type { StoredConfig } from "../api/types";
import { canWrite } from "../app/auth";
import { useAppDispatch, useAppSelector } from "../app/hooks";
import { navigated } from "../app/route";
import { applyRequested } from "../optimistic/listener";
import { ChangeNotice } from "./ChangeNotice";
import { draftOpened, draftStorageKey, errorsSet, isDraft, modeSet, newDraft, type Draft, type Mode } from "./draftSlice";
import { ExpertMode } from "./expert/ExpertMode";
import { expertPointers } from "./expert/params";
import { TextField } from "./fields";
import { Wizard } from "./guided/Wizard";
import { TemplateMode } from "./template/TemplateMode";
import { own } from "../util/dict";

const MODES: Array<{ id: Mode; label: string }> = [
  { id: "guided", label: "Guided" },
  { id: "template", label: "Template" },
  { id: "expert", label: "Expert" },
];

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function restore(tenant: string, key: string | null, stored: StoredConfig | null): Draft {
  try {
    const saved: unknown = JSON.parse(sessionStorage.getItem(draftStorageKey(tenant, key)) ?? "null");
    if (isDraft(saved)) return saved;
  } catch {
    // A damaged saved draft is ignored: the stored version is the starting point.
  }
  const draft = newDraft(stored);
  if (key !== null && !stored) draft.name = key;
  return draft;
}

export function Editor({ name }: { name: string | null }) {
  const dispatch = useAppDispatch();
  const token = useAppSelector((s) => s.auth.token);
  const list = useListDetectorsQuery(undefined, { skip: !token });
  const stored = name === null ? null : (list.data?.find((e) => e.name === name) ?? null);
  const draft = useAppSelector((s) => s.draft.draft);
  const writable = useAppSelector((s) => canWrite(s.auth.claims));
  const tenant = useAppSelector((s) => s.auth.claims?.tenant ?? "");
  const change = useAppSelector((s) => (draft ? own(s.optimistic.changes, draft.name) : undefined));
  // A write under this name still waiting for the server's answer: the next one would be based on a version that does not exist yet.
  const inFlight = change !== undefined && change.state === "pending" && change.version === null;
  const ready = name === null || list.isSuccess || list.isError;
  const open = draft !== null && draft.key === name;

  useEffect(() => {
    if (!open && ready) dispatch(draftOpened(restore(tenant, name, stored)));
  }, [open, ready, tenant, name, stored, dispatch]);

  if (!open || !draft) return <p className="muted">Loading…</p>;

  const known = draft.mode === "expert" ? expertPointers(draft.config) : new Set<string>(["/name", "/reason"]);
  const unplaced = draft.errors.filter((e) => !known.has(e.pointer));

  const apply = () => {
    const trimmed = draft.name.trim();
    if (!NAME_RE.test(trimmed)) {
      dispatch(errorsSet([{ pointer: "/name", message: "1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter or digit" }]));
      return;
    }
    if (draft.rawError) return;
    dispatch(
      applyRequested({
        name: trimmed,
        kind: "upsert",
        config: draft.config,
        reason: draft.reason,
        baseVersion: draft.baseVersion,
        previous: stored,
      }),
    );
    dispatch(navigated({ view: "detectors" }));
  };

  return (
    <section className="editor" aria-labelledby="h-editor">
      <div className="section-head">
        <h2 id="h-editor">{name === null ? "New detector configuration" : `Edit ${name}`}</h2>
        <button type="button" className="secondary" onClick={() => dispatch(navigated({ view: "detectors" }))}>
          Back to the list
        </button>
      </div>
      {stored && draft.baseVersion !== null && draft.baseVersion !== stored.version && (
        <p className="notice-box warn" role="status">
          This draft is based on version {draft.baseVersion}; the live version is {stored.version}. Applying will report a conflict you can resolve.
        </p>
      )}
      {change && <ChangeNotice change={change} />}
      {unplaced.length > 0 && (
        <div className="notice-box failed" data-testid="error-summary" role="alert">
          <p>
            <strong>The server refused the configuration:</strong>
          </p>
          <ul>
            {unplaced.map((e, i) => (
              <li key={i}>
                <code>{e.pointer || "/"}</code>: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <div className="editor-top">
        <TextField pointer="/name" label="Name" testId="field-name" placeholder="checkout-latency" disabled={name !== null} hint={name === null ? "lower-case letters, digits, - and _" : undefined} />
        <div className="mode-switch" role="group" aria-label="Editing mode">
          {MODES.map((m) => (
            <button
              key={m.id}
              type="button"
              className={draft.mode === m.id ? "toggle on" : "toggle"}
              data-testid={`mode-${m.id}`}
              aria-pressed={draft.mode === m.id}
              onClick={() => dispatch(modeSet(m.id))}
            >
              {m.label}
            </button>
          ))}
        </div>
      </div>
      {draft.mode === "guided" && <Wizard draft={draft} />}
      {draft.mode === "template" && <TemplateMode draft={draft} />}
      {draft.mode === "expert" && <ExpertMode draft={draft} live={stored} />}
      <div className="apply-bar">
        <TextField pointer="/reason" label="Reason for the change" testId="field-reason" placeholder="why (kept in the audit log)" />
        <button type="button" className="primary" data-testid="apply" onClick={apply} disabled={draft.rawError !== null || !writable || inFlight}>
          Apply
        </button>
        {inFlight && <span className="muted">Waiting for the server to answer the last change…</span>}
        {draft.rawError && <span className="field-error">Fix the raw JSON first.</span>}
        {!writable && <span className="muted">This token may not change configurations.</span>}
      </div>
    </section>
  );
}
