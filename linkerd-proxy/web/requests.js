// Recent requests: the last sampled requests the proxy served, from
// /admin/recent_requests.json, which answers only when the
// io.l5d.recentRequests telemeter is configured (off by default).
import { el, fill, fmt, getJson, poll } from "/assets/common.js";

let stopPolling = null;

export function start() {
  if (!stopPolling) stopPolling = poll(tick, 2000);
}

export function stop() {
  if (stopPolling) stopPolling();
  stopPolling = null;
}

async function tick() {
  const status = document.getElementById("rr-status");
  let data;
  try {
    data = await getJson("/admin/recent_requests.json");
  } catch (e) {
    status.className = e.status === 404 ? "muted" : "error";
    status.textContent = e.message;
    fill(document.querySelector("#rr tbody"));
    return;
  }
  status.className = "muted";
  status.textContent = `The last ${data.requests.length} of at most ${data.capacity} requests, sampled at ${data.sampleRate}, newest first.`;
  fill(
    document.querySelector("#rr tbody"),
    data.requests.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, new Date(r.time).toLocaleTimeString()),
        el("td", {}, r.router),
        el("td", {}, r.method),
        el("td", { class: "mono" }, r.name ?? "–"),
        el("td", { class: "mono" }, r.boundId ?? "–"),
        el("td", { class: "mono" }, r.endpoint ?? "–"),
        el("td", { class: r.status >= 500 ? "bad" : "" }, r.status),
        el("td", { class: "num" }, fmt.ms(r.latencyMs / 1000)),
      ),
    ),
  );
}
