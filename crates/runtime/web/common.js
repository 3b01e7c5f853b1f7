// What both dashboards use: DOM building, JSON fetching, polling, small
// SVG charts and number formats. Everything the pages show from the
// server goes through text nodes (`el` never parses HTML), so a name,
// label or dtab holding `<script>` is shown as text.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Fetches JSON; a non-2xx answer throws an Error carrying its text and status. */
export async function getJson(url, init) {
  const rsp = await fetch(url, init);
  const text = await rsp.text();
  if (!rsp.ok) {
    const err = new Error(text.trim() || `${rsp.status} ${rsp.statusText}`);
    err.status = rsp.status;
    err.body = text;
    err.headers = rsp.headers;
    throw err;
  }
  return text ? JSON.parse(text) : null;
}

/**
 * Calls `tick` now and every `ms` after the previous call finished (never
 * two at once, so a slow proxy is not piled on). Returns a stop function.
 */
export function poll(tick, ms) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await tick();
    } catch (e) {
      console.error(e);
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Keeps the last `n` values of a series. */
export class Series {
  constructor(n) {
    this.n = n;
    this.values = [];
  }
  push(v) {
    this.values.push(v);
    if (this.values.length > this.n) this.values.shift();
  }
  last() {
    return this.values[this.values.length - 1];
  }
}

/**
 * A small line chart: one `<polyline>` per series, told apart by dash
 * pattern as well as colour (readable without colour), with its scale's
 * top as text. `update` only rewrites the points, which keeps a page of a
 * thousand charts cheap to refresh.
 */
export class Sparkline {
  constructor(label, lines = 1, width = 120, height = 28) {
    this.w = width;
    this.h = height;
    this.lines = [];
    this.top = svg("text", { x: width - 2, y: 9, "text-anchor": "end", class: "scale" });
    this.node = svg(
      "svg",
      { width, height, viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img" },
      svg("title", {}, label),
      this.top,
    );
    for (let i = 0; i < lines; i++) {
      const line = svg("polyline", { class: `line line${i}`, fill: "none" });
      this.lines.push(line);
      this.node.append(line);
    }
  }
  /** `series`: arrays of numbers (null for a gap), `max` the scale's top. */
  update(series, max, label) {
    const top = max > 0 ? max : 1;
    const n = Math.max(2, ...series.map((s) => s.length));
    series.forEach((values, i) => {
      const pts = [];
      values.forEach((v, j) => {
        if (v === null || v === undefined || Number.isNaN(v)) return;
        const x = ((j + n - values.length) / (n - 1)) * (this.w - 1);
        const y = this.h - 1 - (Math.min(v, top) / top) * (this.h - 12);
        pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      });
      this.lines[i].setAttribute("points", pts.join(" "));
    });
    this.top.textContent = label ?? "";
  }
}

export const fmt = {
  rate: (r) => (r === null || r === undefined ? "–" : r >= 100 ? r.toFixed(0) : r.toFixed(1)),
  pct: (p) => (p === null || p === undefined ? "–" : `${(p * 100).toFixed(p < 0.9995 ? 1 : 0)}%`),
  ms: (s) =>
    s === null || s === undefined
      ? "–"
      : s === Infinity
        ? "> 10 s"
        : s >= 1
          ? `${s.toFixed(2)} s`
          : `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`,
  age: (ms) => {
    if (!ms) return "never";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 60 ? `${s.toFixed(0)} s ago` : s < 3600 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
  },
};

/** Calls `fn` once input has paused for `ms`. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Shows one of the page's sections by the URL's fragment (`#editor`). */
export function tabs(names, onShow) {
  const show = () => {
    const want = location.hash.slice(1) || names[0];
    const name = names.includes(want) ? want : names[0];
    for (const n of names) {
      document.getElementById(n).hidden = n !== name;
      const link = document.querySelector(`nav a[href="#${n}"]`);
      if (link) link.setAttribute("aria-current", n === name ? "page" : "false");
    }
    onShow(name);
  };
  addEventListener("hashchange", show);
  show();
}

/** A line-by-line diff (longest common subsequence), as [op, line] with op one of " ", "-", "+". */
export function diffLines(a, b) {
  const lines = (t) => (t === "" ? [] : t.split("\n"));
  const x = lines(a);
  const y = lines(b);
  const m = x.length;
  const n = y.length;
  const lcs = Array.from({ length: m + 1 }, () => new Uint32Array(n + 1));
  for (let i = m - 1; i >= 0; i--)
    for (let j = n - 1; j >= 0; j--)
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < m && j < n) {
    if (x[i] === y[j]) {
      out.push([" ", x[i]]);
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < m) out.push(["-", x[i++]]);
  while (j < n) out.push(["+", y[j++]]);
  return out;
}

/** A diff as a `<pre>`: each line marked with its op as text (readable without colour). */
export function diffView(a, b) {
  return el(
    "pre",
    { class: "diff" },
    diffLines(a, b).map(([op, line]) =>
      el("span", { class: op === "+" ? "add" : op === "-" ? "del" : "same" }, `${op} ${line}\n`),
    ),
  );
}
