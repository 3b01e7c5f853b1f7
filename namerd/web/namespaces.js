// Namespaces: version, size, live bindings and watchers, last change and
// last propagation (dtab change to the last stream write), refreshed every
// few seconds; and the bound names streamed for one namespace, from
// /interpreter_state.json.
import { el, fill, getJson, poll } from "/assets/common.js";
import { namespaces, picked } from "/assets/api.js";

let stopPolling = null;

export function start() {
  if (!stopPolling) stopPolling = poll(tick, 3000);
  document.getElementById("streams-ns").onchange = tick;
}

export function stop() {
  if (stopPolling) stopPolling();
  stopPolling = null;
}

async function tick() {
  const status = document.getElementById("ns-status");
  let list, state;
  try {
    [list, state] = await Promise.all([namespaces(), getJson("/interpreter_state.json")]);
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
    return;
  }
  status.className = "muted";
  status.textContent = `${list.length} namespaces · updated ${new Date().toLocaleTimeString()}`;
  fill(document.querySelector("#ns-table tbody"), list.map(row));
  const select = document.getElementById("streams-ns");
  const chosen = select.value || picked.ns || list[0]?.namespace || "";
  fill(select, list.map((n) => el("option", { value: n.namespace, selected: n.namespace === chosen }, n.namespace)));
  const bindings = state.bindings.filter((b) => b.namespace === chosen);
  fill(
    document.querySelector("#streams tbody"),
    bindings.slice(0, 500).map((b) =>
      el(
        "tr",
        {},
        el("td", { class: "mono" }, b.name),
        el("td", { class: "mono" }, b.localDtab || ""),
        el("td", { class: b.state === "failed" ? "bad" : "" }, b.state),
        el("td", { class: "mono" }, b.tree ?? ""),
        el("td", { class: "num" }, b.watchers ?? 0),
        el("td", {}, b.updated ? new Date(b.updated).toLocaleTimeString() : ""),
        el("td", { class: b.stale ? "bad" : "" }, b.stale ?? ""),
      ),
    ),
    bindings.length > 500 ? el("tr", {}, el("td", { colspan: 7 }, `and ${bindings.length - 500} more (see /interpreter_state.json)`)) : "",
  );
}

function row(n) {
  const change = n.lastChange;
  const prop = n.lastPropagation;
  const go = (section) => (ev) => {
    ev.preventDefault();
    picked.ns = n.namespace;
    location.hash = section;
  };
  return el(
    "tr",
    { "data-ns": n.namespace },
    el("td", { class: "mono" }, n.namespace),
    el("td", { class: "mono" }, n.version ?? "–"),
    el("td", { class: "num" }, n.dentries),
    el("td", { class: "num" }, n.bytes),
    el("td", { class: "num" }, n.bindings),
    el("td", { class: "num" }, n.watchers),
    el("td", {}, change ? `${new Date(change.at).toLocaleString()} ${change.op}${change.author ? ` by ${change.author}` : ""}` : "–"),
    el("td", {}, prop ? `${(prop.seconds * 1000).toFixed(1)} ms, ${new Date(prop.at).toLocaleTimeString()}` : "none since start"),
    el(
      "td",
      {},
      el("a", { href: "#editor", onclick: go("editor") }, "edit"),
      " · ",
      el("a", { href: "#history", onclick: go("history") }, "history"),
      " · ",
      el("a", { href: "#delegator", onclick: go("delegator") }, "delegator"),
    ),
  );
}
