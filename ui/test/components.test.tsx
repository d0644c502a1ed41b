import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { Provider } from "react-redux";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { api } from "../src/api/api";
import { tokenSet } from "../src/app/auth";
import { ErrorBoundary } from "../src/app/ErrorBoundary";
import { DetectorList } from "../src/detectors/DetectorList";
import { applyRequested } from "../src/optimistic/listener";
import { draftOpened, errorsSet, newDraft } from "../src/detectors/draftSlice";
import { ExpertMode } from "../src/detectors/expert/ExpertMode";
import { DriftPanel } from "../src/live/DriftPanel";
import { LivePanel } from "../src/live/LivePanel";
import { anomalyReceived } from "../src/live/liveSlice";
import type { ReactNode } from "react";
import { anomaly, stored } from "./helpers";
import { testStore } from "./store";

declare global {
  var IS_REACT_ACT_ENVIRONMENT: boolean;
}

let root: Root | null = null;
let container: HTMLElement;

beforeAll(() => {
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
});

afterEach(() => {
  act(() => root?.unmount());
  root = null;
  container.remove();
});

function render(node: ReactNode) {
  container = document.createElement("div");
  document.body.appendChild(container);
  root = createRoot(container);
  act(() => root!.render(node));
}

const frame = () => act(() => new Promise<void>((r) => requestAnimationFrame(() => r())));

describe("components", () => {
  it("shows series names and labels as text, never as HTML", async () => {
    const t = testStore();
    render(
      <Provider store={t.store}>
        <LivePanel />
      </Provider>,
    );
    const payload = "<img src=x onerror=alert(1)>";
    act(() => {
      t.store.dispatch(anomalyReceived({ event: anomaly("x1", { series: { name: payload, labels: { l: payload }, key: "k" } }), at: 1 }));
    });
    await frame();
    const row = container.querySelector('#events tbody tr[data-id="x1"]');
    expect(row).not.toBeNull();
    expect(row!.textContent).toContain(payload);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("#sparklines .spark svg polyline")).not.toBeNull();
    expect((container.querySelector("#events-empty") as HTMLElement).hidden).toBe(true);
  });

  it("keeps the other panels working when one crashes", () => {
    const t = testStore();
    function Broken(): ReactNode {
      throw new Error("boom");
    }
    const error = console.error;
    console.error = () => undefined;
    render(
      <Provider store={t.store}>
        <ErrorBoundary name="The live stream">
          <Broken />
        </ErrorBoundary>
        <ErrorBoundary name="The drift table">
          <DriftPanel />
        </ErrorBoundary>
      </Provider>,
    );
    console.error = error;
    expect(container.querySelector('[data-testid="panel-error"]')!.textContent).toContain("boom");
    expect(container.querySelector("#drift")).not.toBeNull();
  });

  it("puts a 422 error at the field its pointer names, and the rest in no field", () => {
    const t = testStore();
    const entry = stored("checkout", 3, { config: { detectors: [{ kind: "range" }, { kind: "mad", window: 2 }], alert: { warning: 2 } } });
    t.store.dispatch(draftOpened(newDraft(entry)));
    t.store.dispatch(errorsSet([{ pointer: "/config/detectors/1/window", message: "window must be at least 5" }]));
    const Expert = () => {
      const draft = t.store.getState().draft.draft!;
      return <ExpertMode draft={draft} live={null} />;
    };
    render(
      <Provider store={t.store}>
        <Expert />
      </Provider>,
    );
    const input = container.querySelector('[data-pointer="/config/detectors/1/window"]')!;
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(input.parentElement!.querySelector(".field-error")!.textContent).toBe("window must be at least 5");
    expect(container.querySelector('[data-pointer="/config/alert/warning"]')!.getAttribute("aria-invalid")).toBeNull();
    expect((container.querySelector('[data-pointer="/config/alert/warning"]') as HTMLInputElement).value).toBe("2");
    expect((container.querySelector('[data-pointer="/config/alert/critical"]') as HTMLInputElement).placeholder).toBe("8");
  });

  it("lists configurations with their state badge, pending at once after Apply", async () => {
    const t = testStore();
    t.store.dispatch(tokenSet("h.p.s"));
    const xss = "<img src=x onerror=alert(1)>";
    await t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, [stored("checkout", 3, { config: { description: xss } })]));
    render(
      <Provider store={t.store}>
        <DetectorList />
      </Provider>,
    );
    await act(async () => {
      await Promise.resolve();
    });
    const row = () => container.querySelector('[data-testid="detector-row"][data-name="checkout"]')!;
    expect(row().getAttribute("data-version")).toBe("3");
    expect(row().querySelector('[data-testid="state-badge"]')!.getAttribute("data-state")).toBe("live");
    expect(row().textContent).toContain(xss);
    expect(container.querySelector("img")).toBeNull();
    act(() => {
      t.store.dispatch(
        applyRequested({ name: "checkout", kind: "upsert", config: { description: "new" }, reason: "", baseVersion: 3, previous: stored("checkout", 3) }),
      );
    });
    expect(row().getAttribute("data-version")).toBe("4");
    expect(row().querySelector('[data-testid="state-badge"]')!.getAttribute("data-state")).toBe("pending");
    expect(container.querySelector('[data-testid="edit-checkout"]')!.tagName).toBe("BUTTON");
  });
});
