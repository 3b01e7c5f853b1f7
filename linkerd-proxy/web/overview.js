// The overview: every few seconds it reads /admin/stats.json (cumulative
// figures), turns the difference from the previous read into rates,
// success rates and latency percentiles over that interval, and keeps the
// last five minutes of them per router and logical name for the charts.
// Endpoints come from /client_state.json, route states from /routes.json
// and the namerd connection from /interpreter_state.json.
import { el, fill, fmt, getJson, poll, Series, Sparkline } from "/assets/common.js";

const PERIOD_MS = 2000;
const KEEP = 150; // samples: five minutes at PERIOD_MS

let stopPolling = null;
let previous = null; // the last stats snapshot
const rows = new Map(); // "router name" -> Row
const routerCards = new Map();
let order = [];

export function start() {
  if (!stopPolling) stopPolling = poll(tick, PERIOD_MS);
  document.getElementById("name-filter").oninput = render;
}

// The overview keeps polling while another section is shown, so that its
// charts have no gap when it is shown again.
export function stop() {}

async function tick() {
  const status = document.getElementById("overview-status");
  const started = performance.now();
  let stats, routes, clients, interpreters;
  try {
    [stats, routes, clients, interpreters] = await Promise.all([
      getJson("/admin/stats.json"),
      getJson("/routes.json"),
      getJson("/client_state.json"),
      getJson("/interpreter_state.json"),
    ]);
  } catch (e) {
    status.textContent = `Cannot read the proxy's figures: ${e.message}`;
    status.className = "error";
    return;
  }
  const fetched = performance.now();
  update(stats, routes);
  render();
  renderEndpoints(clients);
  renderNamerd(interpreters);
  const done = performance.now();
  status.className = "muted";
  status.textContent =
    `Updated ${new Date(stats.time).toLocaleTimeString()} · every ${PERIOD_MS / 1000} s · ` +
    `${rows.size} names · fetch ${(fetched - started).toFixed(0)} ms, render ${(done - fetched).toFixed(0)} ms`;
  // For the browser tests and the 1,000-name measurement.
  window.l5dOverview = { ticks: (window.l5dOverview?.ticks ?? 0) + 1, renderMs: done - fetched, fetchMs: fetched - started, names: rows.size };
}

/** Rates and percentiles of the interval between two cumulative readings. */
function interval(now, before, seconds) {
  if (!before || seconds <= 0) return null;
  const requests = Math.max(0, now.requests - before.requests);
  const success = Math.max(0, now.success - before.success);
  const failure = Math.max(0, now.failure - before.failure);
  const buckets = now.buckets.map(([le, c], i) => [le, c - (before.buckets[i]?.[1] ?? 0)]);
  return {
    rate: requests / seconds,
    success: success + failure > 0 ? success / (success + failure) : null,
    p50: quantile(buckets, 0.5),
    p95: quantile(buckets, 0.95),
    p99: quantile(buckets, 0.99),
  };
}

/** The q-quantile of cumulative buckets, linear within a bucket (as Prometheus' histogram_quantile). */
function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === null) return Infinity;
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1e-9));
    }
    if (le !== null) lower = le;
    below = count;
  }
  return null;
}

class Row {
  constructor(router, name) {
    this.router = router;
    this.name = name;
    this.figures = null;
    this.rate = new Series(KEEP);
    this.success = new Series(KEEP);
    this.p50 = new Series(KEEP);
    this.p95 = new Series(KEEP);
    this.p99 = new Series(KEEP);
    this.state = "";
    this.cells = {
      state: el("td"),
      rate: el("td", { class: "num" }),
      success: el("td", { class: "num" }),
      p50: el("td", { class: "num" }),
      p95: el("td", { class: "num" }),
      p99: el("td", { class: "num" }),
    };
    this.charts = {
      rate: new Sparkline(`${name}: requests per second`),
      success: new Sparkline(`${name}: success rate`),
      latency: new Sparkline(`${name}: p50, p95 and p99 latency`, 3),
    };
    const c = this.cells;
    this.tr = el(
      "tr",
      {},
      el("td", {}, router),
      el("td", { class: "mono" }, name),
      c.state,
      c.rate,
      el("td", {}, this.charts.rate.node),
      c.success,
      el("td", {}, this.charts.success.node),
      c.p50,
      c.p95,
      c.p99,
      el("td", {}, this.charts.latency.node),
    );
    this.tr.dataset.name = name;
  }

  push(figures) {
    for (const k of ["rate", "success", "p50", "p95", "p99"]) this[k].push(figures ? figures[k] : null);
  }

  /** Failing rows sort first: a failed route or failures in the last interval. */
  failing() {
    const s = this.success.last();
    return this.state === "failed" || (s !== null && s !== undefined && s < 1);
  }

  draw() {
    const c = this.cells;
    const failing = this.failing();
    c.state.textContent = failing ? `FAILING ${this.state}` : this.state;
    c.state.className = failing ? "bad" : "";
    c.rate.textContent = fmt.rate(this.rate.last());
    c.success.textContent = fmt.pct(this.success.last());
    c.p50.textContent = fmt.ms(this.p50.last());
    c.p95.textContent = fmt.ms(this.p95.last());
    c.p99.textContent = fmt.ms(this.p99.last());
    const maxRate = Math.max(0, ...this.rate.values.filter((v) => v !== null));
    this.charts.rate.update([this.rate.values], maxRate * 1.1, fmt.rate(maxRate));
    this.charts.success.update([this.success.values], 1, "100%");
    const finite = (v) => (v === Infinity ? 10 : v);
    const lat = [this.p50, this.p95, this.p99].map((s) => s.values.map(finite));
    const maxLat = Math.max(0, ...lat[2].filter((v) => v !== null));
    this.charts.latency.update(lat, maxLat * 1.1, fmt.ms(maxLat));
  }
}

function update(stats, routes) {
  const seconds = previous ? (stats.time - previous.time) / 1000 : 0;
  const states = new Map();
  for (const [router, list] of Object.entries(routes))
    for (const r of list) states.set(`${router} ${r.name}`, r.state);
  for (const [router, figs] of Object.entries(stats.routers)) {
    const before = previous?.routers[router];
    updateRouter(router, interval(figs, before, seconds));
    for (const [name, now] of Object.entries(figs.services)) {
      const key = `${router} ${name}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = new Row(router, name)));
      row.state = states.get(key) ?? "idle";
      row.push(interval(now, before?.services[name], seconds));
    }
  }
  previous = stats;
}

function updateRouter(router, figures) {
  let card = routerCards.get(router);
  if (!card) {
    card = {
      rate: new Sparkline(`${router}: requests per second`, 1, 160, 36),
      success: new Sparkline(`${router}: success rate`, 1, 160, 36),
      latency: new Sparkline(`${router}: latency`, 3, 160, 36),
      series: Object.fromEntries(["rate", "success", "p50", "p95", "p99"].map((k) => [k, new Series(KEEP)])),
      text: el("div"),
    };
    card.node = el(
      "div",
      { class: "card router", "data-router": router },
      el("h3", {}, `router ${router}`),
      card.text,
      el("div", { class: "row" }, card.rate.node, card.success.node, card.latency.node),
    );
    routerCards.set(router, card);
    document.getElementById("routers").append(card.node);
  }
  const s = card.series;
  for (const k of Object.keys(s)) s[k].push(figures ? figures[k] : null);
  fill(
    card.text,
    figure("req/s", fmt.rate(s.rate.last())),
    figure("success", fmt.pct(s.success.last())),
    figure("p50", fmt.ms(s.p50.last())),
    figure("p95", fmt.ms(s.p95.last())),
    figure("p99", fmt.ms(s.p99.last())),
  );
  const max = Math.max(0, ...s.rate.values.filter((v) => v !== null));
  card.rate.update([s.rate.values], max * 1.1, `${fmt.rate(max)}/s`);
  card.success.update([s.success.values], 1, "100%");
  const lat = [s.p50, s.p95, s.p99].map((x) => x.values.map((v) => (v === Infinity ? 10 : v)));
  const maxLat = Math.max(0, ...lat[2].filter((v) => v !== null));
  card.latency.update(lat, maxLat * 1.1, fmt.ms(maxLat));
}

function figure(label, value) {
  return el("span", { class: "figure" }, label, el("b", {}, value));
}

/** Draws the rows that pass the filter, failing ones first, moving rows only when the order changed. */
function render() {
  const filter = document.getElementById("name-filter").value.trim();
  const shown = [...rows.values()].filter((r) => !filter || r.name.includes(filter));
  shown.sort(
    (a, b) =>
      b.failing() - a.failing() ||
      (a.success.last() ?? 1) - (b.success.last() ?? 1) ||
      (b.rate.last() ?? 0) - (a.rate.last() ?? 0) ||
      a.name.localeCompare(b.name),
  );
  for (const r of shown) r.draw();
  const tbody = document.querySelector("#names tbody");
  const same = shown.length === order.length && shown.every((r, i) => r === order[i]);
  if (!same) {
    tbody.replaceChildren(...shown.map((r) => r.tr));
    order = shown;
  }
  document.getElementById("names-count").textContent = `${shown.length} of ${rows.size}`;
}

function renderEndpoints(clients) {
  const out = [];
  for (const [router, ids] of Object.entries(clients)) {
    for (const [id, client] of Object.entries(ids)) {
      if (!client.endpoints?.length) {
        out.push(el("tr", {}, el("td", {}, router), el("td", { class: "mono" }, id), el("td", {}, "–"),
          el("td", { class: client.state === "failed" ? "bad" : "" }, client.state + (client.message ? `: ${client.message}` : ""))));
        continue;
      }
      for (const e of client.endpoints) {
        const dead = e.accrual.state !== "alive";
        out.push(
          el(
            "tr",
            {},
            el("td", {}, router),
            el("td", { class: "mono" }, id),
            el("td", { class: "mono" }, e.address),
            el("td", { class: dead ? "bad" : "" }, e.accrual.state === "dead" ? `DEAD for ${(e.accrual.deadForMs / 1000).toFixed(1)} s` : e.accrual.state),
            el("td", { class: "num" }, e.ewmaMs === null ? "–" : `${e.ewmaMs.toFixed(1)} ms`),
            el("td", { class: "num" }, e.pending),
            el("td", { class: "num" }, e.consecutiveFailures),
            el("td", { class: "num" }, fmt.pct(e.successRate)),
            el("td", {}, e.lastTransition ? fmt.age(e.lastTransition) : "never"),
          ),
        );
      }
    }
  }
  fill(document.querySelector("#endpoints tbody"), out);
}

function renderNamerd(interpreters) {
  const out = [];
  for (const [router, st] of Object.entries(interpreters)) {
    if (st.kind !== "io.l5d.mesh") {
      out.push(el("p", {}, `router ${router}: ${st.kind ?? "default"} interpreter (no namerd)`));
      continue;
    }
    const c = st.connection;
    out.push(
      el("h3", {}, `router ${router}: namerd at ${st.dst} (root ${st.root})`),
      el(
        "p",
        {},
        el("span", { class: c.state === "connected" ? "good" : "bad" }, c.state),
        ` since ${fmt.age(c.since)} · reconnects ${c.watch_reconnects_total} · streams open ${st.streamsOpen} · updates ${st.updates}`,
        c.lastError ? el("span", { class: "error" }, ` ${c.lastError}`) : "",
      ),
    );
    const streams = st.streams ?? [];
    out.push(
      el(
        "table",
        { class: "streams" },
        el("thead", {}, el("tr", {}, el("th", {}, "stream"), el("th", {}, "key"), el("th", {}, "state"), el("th", {}, "last update"), el("th", {}, "last error"))),
        el(
          "tbody",
          {},
          streams.slice(0, 200).map((s) =>
            el(
              "tr",
              {},
              el("td", {}, s.kind),
              el("td", { class: "mono" }, s.name ?? s.id ?? "", s.dtab ? ` (local ${s.dtab})` : ""),
              el("td", {}, s.state ?? ""),
              el("td", {}, fmt.age(s.lastUpdate)),
              el("td", { class: s.lastError ? "bad" : "" }, s.lastError ?? ""),
            ),
          ),
        ),
      ),
      streams.length > 200 ? el("p", { class: "muted" }, `and ${streams.length - 200} more streams (see /interpreter_state.json)`) : "",
    );
  }
  fill(document.getElementById("namerd"), out);
}
