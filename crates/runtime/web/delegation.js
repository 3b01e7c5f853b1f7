// A delegation trace (the JSON of namerd's /api/1/delegate and the
// proxy's /delegator.json) drawn as a tree of list items: each rewrite
// with the dentry that made it, neg and fail leaves, unions with their
// weights, and bound ids with the addresses the server holds for them.
// Shared by both dashboards; every value goes in as text.
import { el } from "/assets/common.js";

/** The root of a trace as a list item, for a `<ul class="tree">`. */
export function traceTree(trace) {
  return node(trace);
}

/** One delegation node and its children as a list item. */
function node(t, weight) {
  const head = [
    el("span", { class: "node-kind" }, t.type),
    weight !== undefined ? el("span", { class: "weight" }, `${weight} × `) : "",
    el("code", { class: "path" }, t.path),
  ];
  if (t.dentry) head.push(el("span", { class: "dentry" }, "via ", el("code", {}, `${t.dentry.prefix} => ${t.dentry.dst}`)));
  if (t.type === "exception") head.push(el("span", { class: "error" }, t.message));
  if (t.type === "neg") head.push(el("span", { class: "muted" }, " (no dentry matched: the name does not exist)"));
  if (t.type === "fail") head.push(el("span", { class: "muted" }, " (failed on purpose: ! in the dtab)"));
  const children = [];
  switch (t.type) {
    case "delegate":
      children.push(node(t.delegate));
      break;
    case "alt":
      children.push(...t.alt.map((c) => node(c)));
      break;
    case "union":
      children.push(...t.union.map((u) => node(u.tree, u.weight)));
      break;
    case "leaf":
      children.push(leaf(t.bound));
      break;
    case "transformation":
      head.push(el("span", { class: "muted" }, ` transformer ${t.name}`));
      children.push(leaf(t.bound), node(t.tree));
      break;
  }
  return el("li", { class: `node-${t.type}` }, head, children.length ? el("ul", {}, children) : "");
}

function leaf(b) {
  const addrs = [];
  const a = b.addr;
  if (!a) addrs.push(el("li", { class: "muted" }, "addresses: not resolved by this proxy yet"));
  else if (a.type === "bound")
    for (const x of a.addrs) {
      const meta = Object.entries(x.meta ?? {}).map(([k, v]) => `${k}=${v}`);
      addrs.push(el("li", { class: "addr" }, el("code", {}, `${x.ip}:${x.port}`), meta.length ? ` ${meta.join(" ")}` : ""));
    }
  else addrs.push(el("li", { class: a.type === "failed" ? "bad" : "muted" }, `addresses: ${a.type}${a.cause ? `: ${a.cause}` : ""}`));
  return el(
    "li",
    { class: "bound" },
    el("span", { class: "node-kind" }, "bound id"),
    el("code", { class: "bound-id" }, b.id),
    b.path && b.path !== "/" ? el("span", { class: "muted" }, ` residual ${b.path}`) : "",
    el("ul", {}, addrs),
  );
}
