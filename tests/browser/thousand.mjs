// The overview with NAMES logical names (1,000): page load (navigation to
// the first drawing of every name) and the cost of each update (fetching
// the JSON and redrawing), measured in the browser while every name gets
// traffic. Prints the figures as a FIGURES line, then "N passed, N failed".
//
//   PROXY_ADMIN, PROXY_HTTP  the proxy (host:port); its dtab sends /svc/* to one backend
//   NAMES                    how many names
//   OUT_DIR, CHROMIUM        as dashboards.mjs
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";
import { launch, until } from "./harness.mjs";

const PROXY = `http://${process.env.PROXY_ADMIN}`;
const [host, port] = process.env.PROXY_HTTP.split(":");
const NAMES = Number(process.env.NAMES ?? 1000);
const UPDATES = 6;
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function hit(i) {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path: "/", agent, headers: { Host: `name-${i}` } }, (rsp) => {
      rsp.resume();
      rsp.on("end", () => resolve(rsp.statusCode));
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** One request to every name, eight at a time. */
async function round() {
  const statuses = [];
  for (let i = 0; i < NAMES; i += 8)
    statuses.push(...(await Promise.all(Array.from({ length: Math.min(8, NAMES - i) }, (_, k) => hit(i + k)))));
  return statuses.filter((s) => s === 200).length;
}

let failed = 0;
const ok = await round();
if (ok !== NAMES) {
  console.log(`not ok - every name answered: ${ok} of ${NAMES}`);
  failed++;
}

const browser = await launch(chromium, process.env.CHROMIUM);
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const stats = await fetch(`${PROXY}/admin/stats.json`).then((r) => r.text());
const started = Date.now();
await page.goto(`${PROXY}/`);
await until(async () => (await page.evaluate(() => window.l5dOverview?.names ?? 0)) >= NAMES, `${NAMES} names drawn`);
const loadMs = Date.now() - started;

// Traffic to every name while the page updates, so each update redraws changed figures.
let sending = true;
const traffic = (async () => {
  while (sending) await round();
})();
const samples = [];
let seen = await page.evaluate(() => window.l5dOverview.ticks);
while (samples.length < UPDATES) {
  await until(async () => (await page.evaluate(() => window.l5dOverview.ticks)) > seen, "the next update");
  const t = await page.evaluate(() => window.l5dOverview);
  seen = t.ticks;
  samples.push({ fetchMs: t.fetchMs, renderMs: t.renderMs });
}
sending = false;
await traffic;
const rows = await page.locator("#names tbody tr").count();
const moving = await page.locator('#names tbody tr[data-name="/svc/name-0"] svg.spark polyline').first().getAttribute("points");
await page.screenshot({ path: path.join(process.env.OUT_DIR, "proxy-overview-1000.png") });
await browser.close();
agent.destroy();

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const figures = {
  names: NAMES,
  statsJsonBytes: stats.length,
  pageLoadMs: loadMs,
  updateFetchMsMedian: +median(samples.map((s) => s.fetchMs)).toFixed(1),
  updateRenderMsMedian: +median(samples.map((s) => s.renderMs)).toFixed(1),
  updateRenderMsMax: +Math.max(...samples.map((s) => s.renderMs)).toFixed(1),
};
console.log(`FIGURES ${JSON.stringify(figures)}`);
const checks = [
  [rows === NAMES, `the table has a row per name (${rows})`],
  [(moving ?? "").split(" ").length >= 2, "name-0's chart has points"],
  // Loose bounds: a page that stopped scaling, not a slow machine.
  [figures.updateRenderMsMax < 2000, `an update redraws in under 2 s (${figures.updateRenderMsMax} ms)`],
];
for (const [pass, what] of checks) {
  console.log(`${pass ? "ok" : "not ok"} - ${what}`);
  if (!pass) failed++;
}
console.log(`${checks.length + 1 - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
