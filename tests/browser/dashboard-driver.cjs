// Drives the gateway's dashboard in headless Chromium for tests/dashboard.rs: one JSON command per
// line on stdin, one JSON reply per line on stdout. Needs playwright-core (scripts/services
// install puts it in target/node) and Debian's chromium.
//
//   {"cmd":"open","url":"http://127.0.0.1:8080/#token=..."}
//   {"cmd":"wait_ids","ids":["e1","e2"],"timeout_ms":20000}   every id has a row
//   {"cmd":"wait_rows","at_least":5,"timeout_ms":20000}
//   {"cmd":"wait_state","state":"live","timeout_ms":20000}    the connection badge
//   {"cmd":"snapshot"}        rows (ids, in table order), drift ids, sparklines, state, counters
//   {"cmd":"screenshot","path":"target/browser/x.png"}
//   {"cmd":"close"}
"use strict";
const path = require("path");
const readline = require("readline");

const modules = process.env.AIOPS_NODE_MODULES || path.join(__dirname, "../../target/node/node_modules");
const { chromium } = require(path.join(modules, "playwright-core"));

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.AIOPS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  const reply = (value) => process.stdout.write(JSON.stringify(value) + "\n");
  const snapshot = () => page.evaluate(() => ({
    state: document.getElementById("connection").dataset.state || "",
    rows: Array.from(document.querySelectorAll("#events tbody tr[data-id]")).map((r) => r.dataset.id),
    drift: Array.from(document.querySelectorAll("#drift tbody tr[data-id]")).map((r) => r.dataset.id),
    sparklines: document.querySelectorAll("#sparklines .spark svg polyline").length,
    counters: {
      events: document.getElementById("count-events").textContent,
      series: document.getElementById("count-series").textContent,
      drift: document.getElementById("count-drift").textContent,
    },
    address: location.href,
    token_form_visible: !document.getElementById("token-form").hidden,
  }));

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    try {
      switch (command.cmd) {
        case "open":
          await page.goto(command.url);
          reply({ ok: true });
          break;
        case "wait_ids":
          await page.waitForFunction(
            (ids) => ids.every((id) => document.querySelector('#events tbody tr[data-id="' + CSS.escape(id) + '"]')),
            command.ids, { timeout: command.timeout_ms || 20000, polling: 100 });
          reply({ ok: true, snapshot: await snapshot() });
          break;
        case "wait_rows":
          await page.waitForFunction(
            (n) => document.querySelectorAll("#events tbody tr[data-id]").length >= n,
            command.at_least, { timeout: command.timeout_ms || 20000, polling: 100 });
          reply({ ok: true, snapshot: await snapshot() });
          break;
        case "wait_state":
          await page.waitForFunction(
            (s) => document.getElementById("connection").dataset.state === s,
            command.state, { timeout: command.timeout_ms || 20000, polling: 50 });
          reply({ ok: true, snapshot: await snapshot() });
          break;
        case "snapshot":
          reply({ ok: true, snapshot: await snapshot() });
          break;
        case "screenshot":
          await page.screenshot({ path: command.path, fullPage: true });
          reply({ ok: true, path: command.path });
          break;
        case "close":
          await browser.close();
          reply({ ok: true, console_errors: consoleErrors });
          process.exit(0);
        default:
          reply({ ok: false, error: "unknown command " + command.cmd });
      }
    } catch (error) {
      let state = null;
      try { state = await snapshot(); } catch (_) { /* the page may be gone */ }
      reply({ ok: false, error: String(error), snapshot: state, console_errors: consoleErrors });
    }
  }
  await browser.close();
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + "\n");
  process.exit(1);
});
