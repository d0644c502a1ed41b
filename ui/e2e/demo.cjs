// The demo's promise to a newcomer, in a browser: `aiops demo --serve` prints a URL that opens
// the UI; a detector configuration made there from a preset is confirmed, and the demo's events
// on the series it matches then carry its version. Run by tests/ui.rs with AIOPS_UI_DEMO_URL
// (the printed URL, token included) and AIOPS_UI_SCREENSHOTS.
"use strict";
const { chromium } = require("playwright-core");
const { say, log, check, waitRow, screenshot, openEditor, openApp, failed } = require("./support.cjs");

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.AIOPS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const errors = [];
  const started = Date.now();
  const page = await openApp(browser, process.env.AIOPS_UI_DEMO_URL, errors);
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 15000 });
  await page.waitForSelector("#events tbody tr[data-id]", { timeout: 30000 });

  await openEditor(page, null, "template");
  await page.fill('[data-testid="field-name"]', "cpu-watch");
  await page.check('[data-testid="preset-request-latency"]');
  await page.fill('[data-testid="field-metric"]', "cpu*");
  await page.fill('[data-testid="field-reason"]', "my first detector");
  const applied = Date.now();
  await page.click('[data-testid="apply"]');
  const version = await waitRow(page, "cpu-watch");
  await check(version === 1, `the demo's configuration is at version ${version}`);
  const confirmed = Date.now();

  // The demo's next events on cpu series are scored by it: their model version says so.
  await page.click('[data-testid="nav-live"]');
  await page.waitForFunction(
    () => Array.from(document.querySelectorAll("#events tbody tr[data-id]")).some((r) => /demo\.cpu-watch@1/.test(r.textContent)),
    null,
    { timeout: 60000, polling: 200 },
  );
  const seen = Date.now();
  await screenshot(page, "demo");
  const unexpected = errors.filter((e) => !/WebSocket|Failed to load resource/.test(e));
  await check(unexpected.length === 0, `console errors: ${unexpected.join(" | ")}`);
  const result = {
    opened_to_confirmed_s: (confirmed - started) / 1000,
    apply_to_confirmed_ms: confirmed - applied,
    apply_to_first_event_s: (seen - applied) / 1000,
  };
  log(`demo: page opened → configuration confirmed in ${result.opened_to_confirmed_s} s; first event of it ${result.apply_to_first_event_s} s after apply`);
  await browser.close();
  say({ result });
  process.exit(0);
}

main().catch(failed);
