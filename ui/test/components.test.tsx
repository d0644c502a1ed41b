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
import { App } from "../src/app/App";
import { PreviewChart } from "../src/detectors/PreviewChart";
import { Editor } from "../src/detectors/Editor";
import { configRefusedSet } from "../src/ws/connectionSlice";
import { confirmationsMissed } from "../src/optimistic/optimistic";
import { connectionChanged } from "../src/ws/connectionSlice";
import { confirmTimedOut } from "../src/optimistic/optimistic";
import { anomaly, jwt, stored } from "./helpers";
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

/** A token whose claims allow writes (Delete is shown only then). */
const WRITER = jwt({ tenant: "acme", sub: "alice", scope: "detectors:write" });

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

  async function list(t: ReturnType<typeof testStore>, entries = [stored("checkout", 3)], token = WRITER) {
    t.store.dispatch(tokenSet(token));
    await t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, entries));
    render(
      <Provider store={t.store}>
        <DetectorList />
      </Provider>,
    );
    await act(async () => {
      await Promise.resolve();
    });
  }
  const q = (sel: string) => container.querySelector<HTMLElement>(sel);

  it("reapplies a conflicted change on top of the other writer's version (error.current) from the notice", async () => {
    const t = testStore();
    await list(t);
    const mine = { description: "mine" };
    act(() => {
      t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: mine, reason: "r", baseVersion: 3, previous: stored("checkout", 3) }));
    });
    await act(() => t.answer({ ok: false, error: { status: 409, message: "m", current: stored("checkout", 5, { updated_by: "bob" }) } }));
    expect(q('[data-testid="conflict"]')!.textContent).toContain("bob");
    act(() => q('[data-testid="reapply"]')!.click());
    expect(t.requests[1]).toMatchObject({ method: "PUT", headers: { "If-Match": '"5"' }, body: { config: mine } });
  });

  it("disables Delete while an edit of that name has no server version yet (finding 1)", async () => {
    const t = testStore();
    await list(t);
    act(() => {
      t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: {}, reason: "", baseVersion: 3, previous: stored("checkout", 3) }));
    });
    expect((q('[data-testid="delete-checkout"]') as HTMLButtonElement).disabled).toBe(true);
    await act(() => t.answer({ ok: true, status: 200, body: stored("checkout", 4) }));
    expect((q('[data-testid="delete-checkout"]') as HTMLButtonElement).disabled).toBe(false);
  });

  it("offers Dismiss on an unconfirmed change (finding 2)", async () => {
    const t = testStore();
    await list(t);
    act(() => {
      t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: {}, reason: "", baseVersion: 3, previous: stored("checkout", 3) }));
    });
    await act(() => t.answer({ ok: true, status: 200, body: stored("checkout", 4) }));
    act(() => {
      t.store.dispatch(confirmTimedOut({ name: "checkout", seq: 1 }));
    });
    const notice = q('[data-testid="unconfirmed"]')!;
    const dismiss = [...notice.querySelectorAll("button")].find((b) => b.textContent === "Dismiss")!;
    act(() => dismiss.click());
    expect(t.store.getState().optimistic.changes.checkout).toBeUndefined();
  });

  it("lists detectors named constructor and __proto__ with what they caught (finding 6)", async () => {
    const t = testStore();
    t.store.dispatch(anomalyReceived({ event: anomaly("c1", { template: "constructor" }), at: Date.now() }));
    await list(t, [stored("constructor", 1), stored("__proto__", 1), stored("toString", 1)]);
    expect(q('[data-testid="panel-error"]')).toBeNull();
    const rows = [...container.querySelectorAll('[data-testid="detector-row"]')];
    expect(rows.map((r) => r.getAttribute("data-name"))).toEqual(["__proto__", "constructor", "toString"]);
    expect(rows[1]!.textContent).toContain("caught recently: 1 in the last hour");
    expect(rows[2]!.textContent).toContain("caught recently: 0 in the last hour");
  });

  it("moves focus to the confirm button on Delete and back to Delete on Cancel (finding 15)", async () => {
    const t = testStore();
    await list(t);
    q('[data-testid="delete-checkout"]')!.focus();
    act(() => q('[data-testid="delete-checkout"]')!.click());
    expect(document.activeElement).toBe(q('[data-testid="confirm-delete-checkout"]'));
    const cancel = [...container.querySelectorAll(".confirm button")].find((b) => b.textContent === "Cancel") as HTMLElement;
    act(() => cancel.click());
    expect(document.activeElement).toBe(q('[data-testid="delete-checkout"]'));
  });

  it("focuses the list heading when it opens with focus lost (after Apply or Revert) (finding 15)", async () => {
    const t = testStore();
    (document.activeElement as HTMLElement | null)?.blur();
    await list(t);
    expect(document.activeElement).toBe(q("#h-detectors"));
  });

  it("announces changes from one live region, not from every badge (finding 15)", async () => {
    const t = testStore();
    await list(t, [stored("checkout", 3), stored("search", 1)]);
    expect(container.querySelectorAll('[data-testid="state-badge"][aria-live], [data-testid="state-badge"][role]')).toHaveLength(0);
    act(() => {
      t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: {}, reason: "", baseVersion: 3, previous: stored("checkout", 3) }));
    });
    expect(container.querySelectorAll("[aria-live]")).toHaveLength(1);
    expect(q('[data-testid="list-announcer"]')!.textContent).toBe("checkout: pending");
  });

  it("announces the connection's state, not its countdown, keeping #connection's data-state (finding 15)", () => {
    const t = testStore();
    render(
      <Provider store={t.store}>
        <App />
      </Provider>,
    );
    act(() => {
      t.store.dispatch(connectionChanged({ state: "reconnecting", text: "reconnecting in 3.2 s" }));
    });
    const connection = q("#connection")!;
    expect(connection.getAttribute("data-state")).toBe("reconnecting");
    expect(connection.textContent).toBe("reconnecting in 3.2 s");
    expect(connection.getAttribute("aria-live")).toBeNull();
    expect(q('[data-testid="connection-announcer"]')!.getAttribute("aria-live")).toBe("polite");
    expect(q('[data-testid="connection-announcer"]')!.textContent).toBe("connection reconnecting");
  });

  it("draws a preview of a very long series (Math.min(...points) threw RangeError) (finding 9)", () => {
    const points = Array.from({ length: 300000 }, (_, i): [number, number] => [i, i % 7]);
    render(<PreviewChart series={{ key: "k", name: "cpu", labels: {}, points }} events={[]} />);
    expect(q('[data-testid="preview-chart"]')).not.toBeNull();
  });

  it("says why a change stays unconfirmed: lost over a reconnect, or a token without the config channel (finding 3)", async () => {
    const t = testStore();
    await list(t);
    act(() => {
      t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: {}, reason: "", baseVersion: 3, previous: stored("checkout", 3) }));
    });
    await act(() => t.answer({ ok: true, status: 200, body: stored("checkout", 4) }));
    act(() => {
      t.store.dispatch(confirmationsMissed());
    });
    expect(q('[data-testid="unconfirmed"]')!.textContent).toContain("may have been missed");
    act(() => {
      t.store.dispatch(configRefusedSet(true));
    });
    expect(q('[data-testid="unconfirmed"]')!.textContent).toContain("this token cannot see confirmations");
  });

  it("disables Apply in the editor while the last change of that name has no server answer (finding 1)", async () => {
    const t = testStore();
    await t.store.dispatch(api.util.upsertQueryData("listDetectors", undefined, [stored("checkout", 3)]));
    t.store.dispatch(tokenSet(WRITER));
    t.store.dispatch(applyRequested({ name: "checkout", kind: "upsert", config: {}, reason: "", baseVersion: 3, previous: stored("checkout", 3) }));
    render(
      <Provider store={t.store}>
        <Editor name="checkout" />
      </Provider>,
    );
    await act(async () => {
      await Promise.resolve();
    });
    expect((q('[data-testid="apply"]') as HTMLButtonElement).disabled).toBe(true);
    await act(() => t.answer({ ok: true, status: 200, body: stored("checkout", 4) }));
    expect((q('[data-testid="apply"]') as HTMLButtonElement).disabled).toBe(false);
  });
});
