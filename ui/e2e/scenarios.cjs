// The operator UI's browser scenarios, run by tests/ui.rs against the real binary and services:
// headless Chromium (playwright-core) on the page the gateway serves, two users of one tenant.
//
// Environment: AIOPS_UI_URL (the gateway), AIOPS_UI_TOKEN_ALICE / _BOB (tokens that may write),
// AIOPS_UI_SCREENSHOTS (a folder), AIOPS_CHROMIUM (the browser binary).
// Protocol with the test, one JSON object per line: {"log": text} and {"result": {...}} on
// stdout; {"need": "restart_gateway"} asks the test to restart the gateway, which answers
// {"done": "restart_gateway"} on stdin. A failed scenario exits 1 with what the page showed.
"use strict";
const { chromium } = require("playwright-core");
const { say, log, need, percentile, check, row, badge, waitRow, tabTo, accessibility, screenshot, openEditor, openApp, failed } = require("./support.cjs");

const URL_BASE = process.env.AIOPS_UI_URL;
const ALICE = process.env.AIOPS_UI_TOKEN_ALICE;
const BOB = process.env.AIOPS_UI_TOKEN_BOB;
const CHANGES_TIMED = 50;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.AIOPS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const errors = [];
  const axeFound = [];
  const result = {};

  // First render, and the live stream with the events the pipeline raises on the spikes.
  const alice = await openApp(browser, URL_BASE + "#token=" + encodeURIComponent(ALICE), errors);
  result.first_render_ms = await alice.evaluate(() => performance.getEntriesByName("aiops:first-render")[0].startTime);
  await alice.waitForSelector('#connection[data-state="live"]', { timeout: 15000 });
  await alice.waitForSelector("#events tbody tr[data-id]", { timeout: 60000 });
  await screenshot(alice, "live");
  await accessibility(alice, "live", axeFound);
  log(`first render ${result.first_render_ms.toFixed(0)} ms; the live stream shows events`);

  // Template mode: a preset, its matcher, a preview of the last day, apply, confirmed.
  await alice.click('[data-testid="nav-detectors"]');
  await accessibility(alice, "detectors list", axeFound);
  await openEditor(alice, null, "template");
  await alice.fill('[data-testid="field-name"]', "checkout-latency");
  await alice.check('[data-testid="preset-request-latency"]');
  await alice.fill('[data-testid="field-metric"]', "latency");
  await alice.click("text=Preview the last day");
  await alice.waitForSelector(".template-mode table.compact", { timeout: 30000 });
  await screenshot(alice, "template");
  await accessibility(alice, "template mode", axeFound);
  await alice.fill('[data-testid="field-reason"]', "watch checkout latency");
  await alice.click('[data-testid="apply"]');
  await alice.waitForSelector(badge("checkout-latency", "pending"), { timeout: 5000 }).catch(() => {
    // It may be live already: the confirmation can beat the next frame.
  });
  let version = await waitRow(alice, "checkout-latency");
  await check(version === 1, `template mode created version ${version}`);
  log("template mode: checkout-latency version 1 confirmed");

  // Guided mode, by keyboard only: name, series search, what is bad, sensitivity with the
  // preview chart, review, apply.
  await alice.click('[data-testid="nav-detectors"]');
  await alice.focus('[data-testid="new-detector"]');
  await alice.keyboard.press("Enter");
  await tabTo(alice, '[data-testid="field-name"]');
  await alice.keyboard.type("search-latency");
  await tabTo(alice, '[data-testid="mode-guided"]');
  await alice.keyboard.press("Enter");
  await tabTo(alice, '[data-testid="field-metric"]');
  await alice.keyboard.type("lat*");
  await tabTo(alice, '[data-testid="series-search"]');
  await alice.keyboard.press("Enter");
  await alice.waitForSelector('[data-testid="series-result"]', { timeout: 30000 });
  const found = await alice.$$eval('[data-testid="series-result"]', (items) => items.map((i) => i.textContent));
  await check(found.length === 12, `the search found ${found.length} series: ${found.join(" | ")}`);
  await tabTo(alice, '[data-testid="series-result"]');
  await alice.keyboard.press("Enter");
  // The first result's exact name and labels now match; widen to the search service's hosts.
  await alice.waitForFunction(() => document.querySelector('[data-testid="field-metric"]').value === "latency");
  await tabTo(alice, '[data-testid="wizard-next"]');
  await alice.keyboard.press("Enter");
  await alice.waitForSelector('[data-testid="wizard-step"][data-step="2"]');
  await tabTo(alice, "#choice-spikes");
  await alice.keyboard.press("Space");
  await tabTo(alice, '[data-testid="wizard-next"]');
  await alice.keyboard.press("Enter");
  await alice.waitForSelector('[data-testid="wizard-step"][data-step="3"]');
  await tabTo(alice, '[data-testid="sensitivity"]');
  await alice.keyboard.press("ArrowRight");
  await alice.waitForSelector('[data-testid="preview-chart"]', { timeout: 30000 });
  await screenshot(alice, "guided");
  await accessibility(alice, "guided mode, sensitivity", axeFound);
  await tabTo(alice, '[data-testid="wizard-next"]');
  await alice.keyboard.press("Enter");
  await alice.waitForSelector('[data-testid="wizard-step"][data-step="4"]');
  await tabTo(alice, '[data-testid="apply"]');
  await alice.keyboard.press("Enter");
  version = await waitRow(alice, "search-latency");
  await check(version === 1, `guided mode created version ${version}`);
  log("guided mode (keyboard only): search-latency version 1 confirmed");

  // Expert mode: a parameter changed, the diff against the live version, apply, confirmed.
  await openEditor(alice, "checkout-latency", "expert");
  await alice.fill('[data-pointer="/config/alert/warning"]', "4");
  await alice.waitForFunction(() => /warning/.test(document.querySelector('[data-testid="diff"]').textContent));
  await screenshot(alice, "expert");
  await accessibility(alice, "expert mode", axeFound);
  await alice.click('[data-testid="apply"]');
  version = await waitRow(alice, "checkout-latency");
  await check(version === 2, `expert mode made version ${version}`);
  log("expert mode: checkout-latency version 2 confirmed");

  // A 422: a parameter the API refuses is shown at its field; the draft is kept.
  await openEditor(alice, "checkout-latency", "expert");
  const windowField = await alice.getAttribute('[data-pointer^="/config/detectors/"][data-pointer$="/window"]', "data-pointer");
  await alice.fill(`[data-pointer="${windowField}"]`, "2");
  await alice.click('[data-testid="apply"]');
  await alice.waitForSelector(`[data-pointer="${windowField}"][aria-invalid="true"]`, { timeout: 10000 });
  const fieldError = await alice.evaluate((pointer) => {
    const input = document.querySelector(`[data-pointer="${pointer}"]`);
    const error = input.closest(".field").querySelector(".field-error");
    return error ? error.textContent : null;
  }, windowField);
  await check(fieldError !== null && /window/.test(fieldError), `the field error at ${windowField}: ${fieldError}`);
  await check((await alice.inputValue(`[data-pointer="${windowField}"]`)) === "2", "the refused draft is kept in the editor");
  await screenshot(alice, "invalid");
  log(`422 shown at ${windowField}: ${fieldError}`);
  await alice.fill(`[data-pointer="${windowField}"]`, "64");
  await alice.click('[data-testid="apply"]');
  version = await waitRow(alice, "checkout-latency");
  await check(version === 3, `the corrected draft made version ${version}`);

  // A 409 between two browsers: bob edits from version 3 while alice makes version 4; bob's
  // change rolls back and says who changed what; reapplied on top, it goes live; each browser
  // sees the other's versions without a reload.
  const bob = await openApp(browser, URL_BASE + "#token=" + encodeURIComponent(BOB), errors);
  await bob.click('[data-testid="nav-detectors"]');
  await check((await waitRow(bob, "checkout-latency")) === 3, "bob sees version 3");
  await openEditor(bob, "checkout-latency", "expert");
  await bob.fill('[data-pointer="/config/description"]', "bob's checkout latency");
  await openEditor(alice, "checkout-latency", "expert");
  await alice.fill('[data-pointer="/config/alert/warning"]', "3.5");
  await alice.click('[data-testid="apply"]');
  await check((await waitRow(alice, "checkout-latency")) === 4, "alice made version 4");
  await bob.click('[data-testid="apply"]');
  await bob.waitForSelector(`${row("checkout-latency")} [data-testid="conflict"]`, { timeout: 10000 });
  const conflict = await bob.textContent(`${row("checkout-latency")} [data-testid="conflict"]`);
  await check(/alice/.test(conflict) && /version 4/.test(conflict), `the conflict names the other writer: ${conflict}`);
  await check(
    (await bob.getAttribute(row("checkout-latency"), "data-version")) === "4",
    "bob's row rolled back to the version there now",
  );
  await screenshot(bob, "conflict");
  log(`409 in bob's browser: ${conflict.slice(0, 120)}`);
  await bob.click(`${row("checkout-latency")} [data-testid="reapply"]`);
  await check((await waitRow(bob, "checkout-latency")) === 5, "bob's change reapplied as version 5");
  await alice.click('[data-testid="nav-detectors"]');
  await alice.waitForSelector(`${row("checkout-latency")}[data-version="5"]`, { timeout: 10000 });
  log("alice's list shows bob's version 5 without a reload");

  // A gateway restart mid-edit: the draft survives, the connection comes back, apply works,
  // and the live stream has no duplicate.
  await openEditor(alice, "checkout-latency", "expert");
  await alice.fill('[data-pointer="/config/description"]', "edited across a gateway restart");
  const before = await alice.$$eval("#events tbody tr[data-id]", (rows) => rows.length).catch(() => 0);
  await need("restart_gateway");
  await alice.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
  await check(
    (await alice.inputValue('[data-pointer="/config/description"]')) === "edited across a gateway restart",
    "the draft survived the restart",
  );
  await alice.click('[data-testid="apply"]');
  await check((await waitRow(alice, "checkout-latency")) === 6, "applied after the restart as version 6");
  await alice.click('[data-testid="nav-live"]');
  const ids = await alice.$$eval("#events tbody tr[data-id]", (rows) => rows.map((r) => r.dataset.id));
  await check(new Set(ids).size === ids.length, "no event shown twice after the reconnect");
  log(`gateway restart mid-edit: draft kept, version 6 confirmed; ${before} → ${ids.length} event rows, no duplicate`);

  // Apply → confirmed, timed over many changes: from the click to the live badge of the new
  // version, as the browser shows it (the waits poll each animation frame).
  const timings = [];
  const appTimings = [];
  let current = 6;
  for (let i = 0; i < CHANGES_TIMED; i++) {
    await openEditor(alice, "checkout-latency", "expert");
    await alice.fill('[data-pointer="/config/alert/warning"]', String(3 + (i % 10) / 10 + 0.05));
    const started = Date.now();
    await alice.click('[data-testid="apply"]');
    await alice.waitForSelector(`${row("checkout-latency")}[data-version="${current + 1}"] [data-testid="state-badge"][data-state="live"]`, {
      timeout: 20000,
    });
    timings.push(Date.now() - started);
    current += 1;
    const text = await alice.textContent(row("checkout-latency"));
    const app = /confirmed in (\d+) ms/.exec(text);
    if (app) appTimings.push(Number(app[1]));
  }
  result.apply_to_confirmed_ms = timings;
  result.apply_to_confirmed_p50_ms = percentile(timings, 50);
  result.apply_to_confirmed_p99_ms = percentile(timings, 99);
  result.apply_to_confirmed_max_ms = Math.max(...timings);
  if (appTimings.length > 0) {
    result.in_app_p50_ms = percentile(appTimings, 50);
    result.in_app_p99_ms = percentile(appTimings, 99);
  }
  log(`apply → confirmed over ${timings.length} changes: p50 ${result.apply_to_confirmed_p50_ms} ms, p99 ${result.apply_to_confirmed_p99_ms} ms`);

  // A delete: pending, then gone when its confirmation arrives (in both browsers).
  await alice.click('[data-testid="nav-detectors"]');
  await alice.click('[data-testid="delete-search-latency"]');
  await alice.click('[data-testid="confirm-delete-search-latency"]');
  await alice.waitForSelector(row("search-latency"), { state: "detached", timeout: 20000 });
  await bob.click('[data-testid="nav-detectors"]');
  await bob.waitForSelector(row("search-latency"), { state: "detached", timeout: 20000 });
  log("delete confirmed in both browsers");

  // WebSocket failures while the gateway was away are expected console errors; nothing else.
  const unexpected = errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e));
  await check(unexpected.length === 0, `console errors: ${unexpected.join(" | ")}`);
  result.axe_serious_violations = axeFound;
  result.console_errors_during_restart = errors.length;
  await browser.close();
  say({ result });
  process.exit(0);
}

main().catch(failed);
