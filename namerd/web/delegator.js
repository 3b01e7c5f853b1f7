// The delegator: how a path delegates in a namespace (namerd's
// /api/1/delegate/{ns}), drawn as a tree.
import { debounce, fill, getJson } from "/assets/common.js";
import { traceTree } from "/assets/delegation.js";
import { auth, namespaceSelect, picked } from "/assets/api.js";

const $ = (id) => document.getElementById(id);
let wired = false;
let seq = 0;

export async function start() {
  if (!wired) {
    wired = true;
    const again = debounce(draw, 250);
    $("dg-path").addEventListener("input", again);
    $("dg-dtab").addEventListener("input", again);
    $("dg-ns").addEventListener("change", draw);
  }
  await namespaceSelect($("dg-ns"));
  if (picked.ns) $("dg-ns").value = picked.ns;
  draw();
}

export function stop() {}

async function draw() {
  const name = $("dg-ns").value;
  const path = $("dg-path").value.trim();
  if (!name || !path) return;
  const mine = ++seq;
  const q = new URLSearchParams({ path, dtab: $("dg-dtab").value });
  try {
    const trace = await getJson(`/api/1/delegate/${encodeURIComponent(name)}?${q}`, { headers: auth() });
    if (mine !== seq) return;
    $("dg-status").className = "muted";
    $("dg-status").textContent = `${path} in ${name}:`;
    fill($("dg-tree"), traceTree(trace));
  } catch (e) {
    if (mine !== seq) return;
    $("dg-status").className = "error";
    $("dg-status").textContent = e.message;
    fill($("dg-tree"));
  }
}
