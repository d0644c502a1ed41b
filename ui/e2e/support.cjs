// What the browser scenarios share: the line protocol with the test that runs them, page
// helpers (open the app with a token, wait for a configuration's state, Tab to an element),
// axe-core and screenshots. See scenarios.cjs.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const SHOTS = process.env.AIOPS_UI_SCREENSHOTS;
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const log = (text) => say({ log: text });

// Answers from the test on stdin, one per request (read only by scenarios that ask).
const answers = [];
let waiting = null;
let listening = false;
function listen() {
  if (listening) return;
  listening = true;
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    if (!line.trim()) return;
    const message = JSON.parse(line);
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve(message);
    } else answers.push(message);
  });
}

/** Asks the test for `what` and waits for its answer. */
function need(what) {
  listen();
  say({ need: what });
  return new Promise((resolve) => {
    if (answers.length > 0) resolve(answers.shift());
    else waiting = resolve;
  });
}

function percentile(values, p) {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function check(condition, message) {
  if (!condition) throw new Error(message);
}

const row = (name) => `[data-testid="detector-row"][data-name="${name}"]`;
const badge = (name, state) => `${row(name)} [data-testid="state-badge"][data-state="${state}"]`;

/** The row's version once its badge says `state` (default: live). */
async function waitRow(page, name, state = "live", timeout = 20000) {
  await page.waitForSelector(badge(name, state), { timeout });
  return Number(await page.getAttribute(row(name), "data-version"));
}

/** Presses Tab until the focused element matches `selector` (keyboard-only navigation). */
async function tabTo(page, selector, limit = 60) {
  for (let i = 0; i < limit; i++) {
    if (await page.evaluate((s) => document.activeElement !== null && document.activeElement.matches(s), selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`${limit} presses of Tab never reached ${selector}`);
}

/** axe-core on the page as it is; serious and critical violations, named by view. */
async function accessibility(page, view, found) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  for (const v of violations) {
    if (v.impact === "serious" || v.impact === "critical") found.push(`${view}: ${v.id} (${v.impact}, ${v.nodes} nodes): ${v.help}`);
  }
  log(`axe on ${view}: ${violations.length} violations (${violations.map((v) => `${v.id}/${v.impact}`).join(", ") || "none"})`);
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `ui-${name}.png`), fullPage: true });
}

/** Opens the editor of `name` (or a new one) in `mode`. */
async function openEditor(page, name, mode) {
  await page.click('[data-testid="nav-detectors"]');
  await page.click(name === null ? '[data-testid="new-detector"]' : `[data-testid="edit-${name}"]`);
  await page.click(`[data-testid="mode-${mode}"]`);
  await page.waitForSelector(`[data-testid="mode-${mode}"][aria-pressed="true"]`);
}

// Every page opened, for a screenshot of each when a scenario fails.
const pages = [];

/** Says why a scenario failed, with a screenshot and the text of every page; exits 1. */
async function failed(error) {
  say({ log: `FAILED: ${error && error.stack ? error.stack : String(error)}` });
  for (const [index, page] of pages.entries()) {
    try {
      const shot = path.join(SHOTS, `ui-failure-${index}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      const text = await page.evaluate(() => (document.querySelector("main") ? document.querySelector("main").innerText : ""));
      say({ log: `page ${index} (${page.url()}), screenshot ${shot}:\n${text.slice(0, 3000)}` });
    } catch {
      // The page may be gone.
    }
  }
  process.exit(1);
}

async function openApp(browser, url, errors) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  pages.push(page);
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === "1", null, { timeout: 15000 });
  return page;
}


module.exports = { say, log, need, percentile, check, row, badge, waitRow, tabTo, accessibility, screenshot, openEditor, openApp, pages, failed };
