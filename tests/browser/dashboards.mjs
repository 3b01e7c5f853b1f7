// The dashboards as a person uses them, in headless Chromium driven by
// playwright-core, against the real binaries that tests/tests/dashboards.rs
// started. It reads where they are from the environment:
//
//   PROXY_ADMIN, PROXY_HTTP   the proxy's admin and http router (host:port)
//   NAMERD_ADMIN, NAMERD_HTTP namerd's admin and HTTP API (host:port)
//   NAMESPACE                 the dtab namespace the proxy reads
//   OUT_DIR                   where screenshots go
//   CHROMIUM                  the browser binary (Debian's chromium)
//
// Each check prints "ok - <name> (<ms> ms)" or "not ok - <name>: <why>";
// the last line is "N passed, N failed" and the exit status is 1 on any
// failure. Waits are bounded (WAIT_MS, generous for a loaded machine) and
// wait for what the page shows, never for a fixed time.
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";
import { launch, sendLoad, until, WAIT_MS } from "./harness.mjs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const PROXY = `http://${env("PROXY_ADMIN")}`;
const NAMERD = `http://${env("NAMERD_ADMIN")}`;
const PROXY_HTTP = env("PROXY_HTTP");
const NAMERD_HTTP = env("NAMERD_HTTP");
const NS = env("NAMESPACE");
const OUT = env("OUT_DIR");

const browser = await launch(chromium, env("CHROMIUM"));
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const shot = (page, name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
const results = [];

async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(true);
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`not ok - ${name}: ${e.stack ?? e}`);
  }
}

/** One request through the proxy to Host `world`: the backend's answer. */
function world() {
  return new Promise((resolve, reject) => {
    const [host, port] = PROXY_HTTP.split(":");
    const req = http.request({ host, port, path: "/", headers: { Host: "world" } }, (rsp) => {
      let body = "";
      rsp.on("data", (c) => (body += c));
      rsp.on("end", () => resolve({ status: rsp.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A raw request to namerd's API or admin (no browser): status, headers and body. */
function raw(base, method, urlPath, headers = {}, body = "") {
  return new Promise((resolve, reject) => {
    const [host, port] = base.split(":");
    const req = http.request({ host, port, method, path: urlPath, headers }, (rsp) => {
      let text = "";
      rsp.on("data", (c) => (text += c));
      rsp.on("end", () => resolve({ status: rsp.statusCode, headers: rsp.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const scriptsOf = (page) => page.evaluate(() => ({ scripts: document.scripts.length, pwned: window.pwned ?? null }));

async function noScriptRan(page) {
  const s = await scriptsOf(page);
  if (s.pwned !== null || s.scripts !== 1) throw new Error(`a script from the data ran or was inserted: ${JSON.stringify(s)}`);
}

// --- the proxy's overview -------------------------------------------------

const overview = await context.newPage();
await check("proxy overview shows the router and its charts move under load", async () => {
  const load = sendLoad(PROXY_HTTP, "world", 25, 12_000);
  await overview.goto(`${PROXY}/`);
  await overview.locator('.card.router[data-router="http"]').waitFor({ timeout: WAIT_MS });
  const points = () => overview.locator('.card.router[data-router="http"] svg.spark polyline').first().getAttribute("points");
  const ticks = () => overview.evaluate(() => window.l5dOverview?.ticks ?? 0);
  await until(async () => (await ticks()) >= 3 && (await points())?.split(" ").length >= 2, "two intervals of figures");
  const before = await points();
  const t = await ticks();
  await until(async () => (await ticks()) >= t + 2, "two more updates");
  const after = await points();
  if (!after || after === before) throw new Error(`the rate chart did not move: ${before} then ${after}`);
  const row = overview.locator('#names tbody tr[data-name="/svc/world"]');
  await row.waitFor({ timeout: WAIT_MS });
  const rate = Number(await row.locator("td").nth(3).textContent());
  if (!(rate > 0)) throw new Error(`/svc/world shows ${rate} req/s under load`);
  await overview.locator("#endpoints tbody tr").first().waitFor({ timeout: WAIT_MS });
  const endpoints = await overview.locator("#endpoints tbody").textContent();
  if (!endpoints.includes("world-v1") || !endpoints.includes("alive")) throw new Error(`endpoints: ${endpoints}`);
  const namerd = await overview.locator("#namerd").textContent();
  if (!namerd.includes("connected")) throw new Error(`namerd connection: ${namerd}`);
  await load;
  await shot(overview, "proxy-overview");
});

await check("playground draws /svc/world's tree and follows a typed override", async () => {
  await overview.goto(`${PROXY}/#playground`);
  await overview.fill("#pg-path", "/svc/world");
  const ids = () => overview.locator("#pg-tree .bound-id").allTextContents();
  await until(async () => (await ids()).some((t) => t.endsWith("/world-v1")), "the tree's bound id world-v1");
  const dentries = await overview.locator("#pg-tree .dentry").allTextContents();
  if (!dentries.some((d) => d.includes("/host/world => /srv/world-v1"))) throw new Error(`dentries shown: ${dentries}`);
  if ((await overview.locator("#pg-tree .addr").count()) < 1) throw new Error("no addresses under the bound id");
  await shot(overview, "proxy-playground");
  await overview.fill("#pg-dtab", "/svc/world => /srv/world-v2;");
  // The override's dentry is tried first; the stored dtab's stays as the alternative.
  await until(async () => (await ids())[0]?.endsWith("/world-v2"), "the tree to follow the override to world-v2 first");
  const overrideShown = await overview.locator("#pg-tree .dentry").first().textContent();
  if (!overrideShown.includes("/svc/world => /srv/world-v2")) throw new Error(`the override's dentry: ${overrideShown}`);
  await shot(overview, "proxy-playground-override");
});

await check("a <script> typed in the playground is shown as text", async () => {
  const evil = "/svc/world => /<script>window.pwned=1</script>;";
  await overview.fill("#pg-dtab", evil);
  // The parser's message echoes the input with the offending character in brackets.
  await until(async () => (await overview.locator("#pg-status").textContent()).includes("script>window.pwned=1</script>"), "the parser's message echoing the input");
  await noScriptRan(overview);
  await overview.fill("#pg-dtab", "");
});

await check("recent requests lists the last requests with name, bound id, endpoint and status", async () => {
  await overview.goto(`${PROXY}/#requests`);
  const first = overview.locator("#rr tbody tr").first();
  await first.waitFor({ timeout: WAIT_MS });
  const cells = await first.locator("td").allTextContents();
  const [, router, method, name, id, endpoint, status] = cells;
  if (router !== "http" || method !== "GET" || name !== "/svc/world" || !id.startsWith("/#/io.l5d.fs/world-v") || !/^127\.0\.0\.1:\d+$/.test(endpoint) || status !== "200")
    throw new Error(`the newest request reads ${JSON.stringify(cells)}`);
  if ((await overview.locator("#rr tbody tr").count()) !== 20) throw new Error("not the configured capacity of 20 after the load");
  await shot(overview, "proxy-recent-requests");
});

// --- namerd -----------------------------------------------------------------

const editorA = await context.newPage();
const initial = await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`, { Accept: "application/dtab" });
const initialVersion = initial.headers.etag;

await check("an invalid dtab shows the parser's message at its place and cannot be saved", async () => {
  await editorA.goto(`${NAMERD}/#editor`);
  await editorA.fill("#ed-ns", NS);
  await editorA.click("#ed-load");
  await until(async () => (await editorA.inputValue("#ed-text")).includes("/srv"), "the dtab to load");
  const text = `${await editorA.inputValue("#ed-text")}\n/host/broken =>> /srv/x;`;
  await editorA.fill("#ed-text", text);
  const check = editorA.locator("#ed-check");
  await until(async () => (await check.getAttribute("class")) === "error", "the inline error");
  const expected = JSON.parse((await raw(env("NAMERD_ADMIN"), "POST", "/admin/dtab/parse", {}, text)).body);
  const shown = await check.textContent();
  const lines = text.split("\n");
  if (shown !== `line ${expected.line}, column ${expected.column}: ${expected.message}`) throw new Error(`shown: ${shown}`);
  if (expected.line !== lines.length) throw new Error(`the error is on line ${expected.line}, not the last (${lines.length})`);
  const marker = await editorA.locator("#ed-marked .marker").textContent();
  if (marker !== text[expected.utf16Offset] || marker !== ">") throw new Error(`marked ${JSON.stringify(marker)} at ${expected.utf16Offset}`);
  if (!(await editorA.locator("#ed-save").isDisabled())) throw new Error("Save is enabled for an invalid dtab");
  await editorA.locator("#ed-save").click({ force: true });
  const after = await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`);
  if (after.headers.etag !== initialVersion) throw new Error("the invalid dtab was saved");
  await shot(editorA, "namerd-editor-invalid");
});

await check("a <script> typed in the editor is shown as text", async () => {
  await editorA.fill("#ed-text", "/svc => /<script>window.pwned=1</script>");
  await until(async () => (await editorA.locator("#ed-check").textContent()).includes("script>window.pwned=1</script>"), "the message echoing it");
  if (!(await editorA.locator("#ed-marked").textContent()).includes("<script>window.pwned=1</script>")) throw new Error("the marked copy");
  await noScriptRan(editorA);
});

let savedByA = null;
await check("two editors saving the same version: one saves, the other sees the conflict", async () => {
  const editorB = await context.newPage();
  for (const page of [editorA, editorB]) {
    await page.goto(`${NAMERD}/#editor`);
    await page.fill("#ed-ns", NS);
    await page.click("#ed-load");
    await until(async () => (await page.locator("#ed-version").textContent()).includes(initialVersion), "the version to show");
  }
  const base = await editorA.inputValue("#ed-text");
  const mine = `${base}\n/host/world => /srv/world-v2;`;
  const theirs = `${base}\n/host/extra => /srv/world-v1;`;
  await editorA.fill("#ed-text", mine);
  await editorB.fill("#ed-text", theirs);
  for (const page of [editorA, editorB])
    await until(async () => !(await page.locator("#ed-save").isDisabled()), "Save to be enabled");
  await editorA.click("#ed-save");
  await until(async () => (await editorA.locator("#ed-result").textContent()).startsWith("Saved"), "A's save");
  savedByA = (await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`)).headers.etag;
  await editorB.click("#ed-save");
  await editorB.locator("#ed-conflict").waitFor({ state: "visible", timeout: WAIT_MS });
  const shownTheirs = await editorB.locator("#cf-theirs").textContent();
  if (!shownTheirs.includes("/host/world => /srv/world-v2")) throw new Error(`the other writer's version shown: ${shownTheirs}`);
  if (!(await editorB.locator("#cf-mine").textContent()).includes("/host/extra")) throw new Error("B's own text is not shown");
  if (!(await editorB.locator("#cf-theirs-version").textContent()).includes(savedByA)) throw new Error("the conflict does not name A's version");
  const now = await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`);
  if (now.headers.etag !== savedByA) throw new Error("B's save overwrote A's");
  await shot(editorB, "namerd-editor-conflict");
  // B takes A's version, adds its line again and saves on A's version.
  await editorB.click("#cf-take");
  await until(async () => (await editorB.inputValue("#ed-text")).includes("/srv/world-v2"), "their text in the editor");
  await editorB.fill("#ed-text", `${await editorB.inputValue("#ed-text")}\n/host/extra => /srv/world-v1;`);
  await until(async () => !(await editorB.locator("#ed-save").isDisabled()), "Save to be enabled");
  await editorB.click("#ed-save");
  await until(async () => (await editorB.locator("#ed-result").textContent()).startsWith("Saved"), "B's save on A's version");
  await editorB.close();
});

await check("rollback restores a previous version and the proxy's traffic follows", async () => {
  // A's save sent world to world-v2 (B's save kept it).
  await until(async () => (await world()).body.includes("world-v2"), "traffic to reach world-v2");
  const page = editorA;
  await page.goto(`${NAMERD}/#history`);
  const entry = page.locator(`.history-entry[data-version="${initialVersion}"]`);
  await entry.waitFor({ timeout: WAIT_MS });
  if ((await page.locator(".history-entry").count()) < 3) throw new Error("history lacks the versions written");
  const diff = await page.locator(".history-entry").nth(1).locator("pre.diff .add").allTextContents();
  if (!diff.some((l) => l.includes("/host/world => /srv/world-v2"))) throw new Error(`A's diff: ${diff}`);
  await shot(page, "namerd-history");
  await entry.locator("button.rollback").click();
  await until(async () => (await page.locator("#hi-status").textContent()).startsWith("Rolled back"), "the rollback");
  const now = await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`, { Accept: "application/dtab" });
  if (now.body.includes("world-v2")) throw new Error(`the dtab still sends to world-v2: ${now.body}`);
  await until(async () => {
    const bodies = await Promise.all([world(), world(), world()]);
    return bodies.every((b) => b.body.includes("world-v1"));
  }, "traffic to follow back to world-v1");
});

await check("namerd's pages show a <script> author as text, and the namespaces and delegator", async () => {
  const cur = await raw(NAMERD_HTTP, "GET", `/api/1/dtabs/${NS}`, { Accept: "application/dtab" });
  const put = await raw(NAMERD_HTTP, "PUT", `/api/1/dtabs/${NS}`, {
    "Content-Type": "application/dtab",
    "If-Match": cur.headers.etag,
    "l5d-author": "<script>window.pwned=1</script>",
  }, cur.body);
  if (put.status !== 204) throw new Error(`PUT: ${put.status} ${put.body}`);
  const page = editorA;
  await page.goto(`${NAMERD}/#namespaces`);
  const row = page.locator(`#ns-table tr[data-ns="${NS}"]`);
  await row.waitFor({ timeout: WAIT_MS });
  await until(async () => (await row.textContent()).includes("<script>window.pwned=1</script>"), "the author shown as text");
  await until(async () => (await page.locator("#streams tbody tr").count()) >= 1, "the streamed names");
  await noScriptRan(page);
  await shot(page, "namerd-namespaces");
  await page.goto(`${NAMERD}/#history`);
  await until(async () => (await page.locator(".history-entry h3").first().textContent()).includes("<script>window.pwned=1</script>"), "the author in the history");
  await noScriptRan(page);
  await page.goto(`${NAMERD}/#delegator`);
  await page.fill("#dg-path", "/svc/world");
  await until(async () => (await page.locator("#dg-tree .bound-id").allTextContents()).some((t) => t.endsWith("/world-v1")), "the delegator's tree");
  await shot(page, "namerd-delegator");
});

await check("a cross-origin write to namerd's admin is refused", async () => {
  // A page of another origin (the proxy's admin) posts to namerd's admin.
  const other = await context.newPage();
  await other.goto(`${PROXY}/`);
  await other.evaluate(async (url) => {
    await fetch(url, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "/a => /b" }).catch(() => {});
  }, `${NAMERD}/api/1/dtabs/crossorigin`);
  await other.close();
  const created = await raw(NAMERD_HTTP, "GET", "/api/1/dtabs/crossorigin");
  if (created.status !== 404) throw new Error(`the cross-origin POST created the namespace: ${created.status}`);
  // The same request with this origin, from the namerd page, is written.
  const same = await editorA.evaluate(async () => {
    const r = await fetch("/api/1/dtabs/sameorigin", { method: "POST", headers: { "Content-Type": "application/dtab" }, body: "/a => /b" });
    return r.status;
  });
  if (same !== 204) throw new Error(`a same-origin create answered ${same}`);
  const refused = await raw(env("NAMERD_ADMIN"), "POST", "/api/1/dtabs/crossorigin", { Origin: PROXY, "Content-Type": "application/dtab" }, "/a => /b");
  if (refused.status !== 403 || !refused.body.includes("cross-origin write refused")) throw new Error(`${refused.status} ${refused.body}`);
  // DNS rebinding: a hostile name rebound to namerd's address sends that
  // name as both Origin and Host; only the name gives it away.
  const port = new URL(NAMERD).port;
  const rebound = await raw(env("NAMERD_ADMIN"), "POST", "/api/1/dtabs/crossorigin", { Host: `evil.example:${port}`, Origin: `http://evil.example:${port}`, "Content-Type": "application/dtab" }, "/a => /b");
  if (rebound.status !== 403 || !rebound.body.includes("DNS rebinding")) throw new Error(`rebinding: ${rebound.status} ${rebound.body}`);
  const still = await raw(NAMERD_HTTP, "GET", "/api/1/dtabs/crossorigin");
  if (still.status !== 404) throw new Error(`a refused write created the namespace: ${still.status}`);
});

await browser.close();
const passed = results.filter(Boolean).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
