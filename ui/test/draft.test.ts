import { describe, expect, it } from "vitest";
import {
  draftSlice,
  draftOpened,
  errorsSet,
  fieldSet,
  modeSet,
  newDraft,
  presetChosen,
  rawEdited,
  guidedSet,
  isDraft,
} from "../src/detectors/draftSlice";
import { lineDiff } from "../src/detectors/expert/diff";
import { expertPointers } from "../src/detectors/expert/params";
import { alertFor, detectorsFor } from "../src/detectors/guided/mapping";
import { getAt, parsePointer, setAt } from "../src/detectors/pointer";
import { stored } from "./helpers";

const reduce = draftSlice.reducer;
const opened = () => reduce(undefined, draftOpened(newDraft(stored("checkout", 3))));

describe("draft", () => {
  it("edits any field by its JSON pointer and keeps the raw JSON in sync", () => {
    let s = opened();
    s = reduce(s, fieldSet({ pointer: "/config/detectors/0/window", value: 30 }));
    s = reduce(s, fieldSet({ pointer: "/config/alert/warning", value: 4 }));
    expect(s.draft!.config.detectors).toEqual([{ kind: "range", window: 30 }]);
    expect(JSON.parse(s.draft!.rawText)).toEqual(s.draft!.config);
  });

  it("removes a field set to undefined (back to its default)", () => {
    let s = opened();
    s = reduce(s, fieldSet({ pointer: "/config/alert/warning", value: undefined }));
    expect(s.draft!.config.alert).toEqual({});
  });

  it("takes raw JSON edits into the form, and keeps unparsable text with an error", () => {
    let s = opened();
    s = reduce(s, rawEdited('{"alert": {"warning": 9}}'));
    expect(s.draft!.config).toEqual({ alert: { warning: 9 } });
    s = reduce(s, rawEdited('{"alert": {"warning": '));
    expect(s.draft!.rawText).toBe('{"alert": {"warning": ');
    expect(s.draft!.rawError).not.toBeNull();
    expect(s.draft!.config).toEqual({ alert: { warning: 9 } });
    // A form edit while the text is broken does not overwrite the text.
    s = reduce(s, fieldSet({ pointer: "/config/description", value: "d" }));
    expect(s.draft!.rawText).toBe('{"alert": {"warning": ');
    s = reduce(s, rawEdited("[1]"));
    expect(s.draft!.rawError).toContain("object");
  });

  it("keeps the draft when switching modes", () => {
    let s = opened();
    s = reduce(s, fieldSet({ pointer: "/config/match/metric", value: "cpu*" }));
    s = reduce(s, modeSet("guided"));
    s = reduce(s, guidedSet({ sensitivity: 5 }));
    s = reduce(s, modeSet("template"));
    s = reduce(s, modeSet("expert"));
    expect(s.draft!.config.match).toEqual({ metric: "cpu*" });
    expect(s.draft!.sensitivity).toBe(5);
  });

  it("keeps the matcher and description when a preset is chosen", () => {
    let s = opened();
    s = reduce(s, fieldSet({ pointer: "/config/description", value: "mine" }));
    s = reduce(s, presetChosen({ name: "error-rate", config: { match: {}, detectors: [{ kind: "zscore" }], description: "" } }));
    expect(s.draft!.config).toMatchObject({ match: { metric: "lat*" }, description: "mine", detectors: [{ kind: "zscore" }], preset: "error-rate" });
    expect(s.draft!.preset).toBe("error-rate");
  });

  it("clears a field's server error once the field is edited", () => {
    let s = opened();
    s = reduce(s, errorsSet([{ pointer: "/config/alert/warning", message: "bad" }, { pointer: "/name", message: "bad" }]));
    s = reduce(s, fieldSet({ pointer: "/config/alert/warning", value: 2 }));
    expect(s.draft!.errors).toEqual([{ pointer: "/name", message: "bad" }]);
  });

  it("recognises a saved draft and rejects junk", () => {
    expect(isDraft(newDraft(null))).toBe(true);
    expect(isDraft({ name: 1 })).toBe(false);
    expect(isDraft(null)).toBe(false);
  });
});

describe("pointers", () => {
  it("parse escapes and read and write nested values", () => {
    expect(parsePointer("/a~1b/c~0d")).toEqual(["a/b", "c~d"]);
    const doc = { a: [{ b: 1 }] };
    expect(getAt(doc, ["a", "0", "b"])).toBe(1);
    setAt(doc, ["a", "0", "c"], 2);
    setAt(doc, ["x", "y"], true);
    expect(doc).toEqual({ a: [{ b: 1, c: 2 }], x: { y: true } });
  });

  it("lists the expert form's pointers, so unknown ones go to the summary", () => {
    const p = expertPointers({ detectors: [{ kind: "mad" }, { kind: "range", custom: 1 }], match: { labels: { env: "prod" } } });
    expect(p.has("/config/detectors/0/window")).toBe(true);
    expect(p.has("/config/detectors/1/custom")).toBe(true);
    expect(p.has("/config/match/labels/env")).toBe(true);
    expect(p.has("/config/alert/cooldown_ms")).toBe(true);
    expect(p.has("/config/colour")).toBe(false);
  });
});

describe("guided mapping", () => {
  it("maps spikes and drops to range + mad once, the range with the default's noise floor", () => {
    expect(detectorsFor(["spikes", "drops"])).toEqual([{ kind: "range", noise_floor: 1.65, half_life: 20000, warmup: 20 }, { kind: "mad" }]);
  });

  it("maps level shifts, daily pattern and creep", () => {
    expect(detectorsFor(["level", "daily", "creep"])).toEqual([
      { kind: "range", smooth: 0.1, tolerance: 0.1, noise_floor: 1.5 },
      { kind: "seasonal" },
      { kind: "range", smooth: 0.05 },
      { kind: "zscore", input: "delta" },
    ]);
    expect(detectorsFor([])).toEqual([{ kind: "range", noise_floor: 1.65, half_life: 20000, warmup: 20 }, { kind: "mad" }]);
  });

  it("maps sensitivity to thresholds: more sensitive means lower, ordered clear < warning < critical", () => {
    const w = [1, 2, 3, 4, 5].map((n) => alertFor(n).warning as number);
    expect(w).toEqual([...w].sort((a, b) => b - a));
    expect(alertFor(3)).toMatchObject({ warning: 2, critical: 4, young_points: 1440, young_warning: 4 });
    for (let n = 1; n <= 5; n++) {
      const a = alertFor(n);
      expect(a.clear as number).toBeLessThan(a.warning as number);
      expect(a.warning as number).toBeLessThan(a.critical as number);
    }
  });
});

describe("line diff", () => {
  it("marks added and removed lines", () => {
    expect(lineDiff("a\nb\nc", "a\nx\nc")).toEqual([
      { op: "same", text: "a" },
      { op: "del", text: "b" },
      { op: "add", text: "x" },
      { op: "same", text: "c" },
    ]);
  });

  it("treats an empty before as all added", () => {
    expect(lineDiff("", "a\nb").map((l) => l.op)).toEqual(["add", "add"]);
  });
});
