// The dtab playground: a path and an optional override dtab, delegated by
// the chosen router's interpreter (/delegator.json, the same trace
// namerd's /api/1/delegate gives) and drawn as a tree: each rewrite with
// the dentry that made it, neg and fail leaves, bound ids with the
// addresses and weights the proxy holds for them now.
import { debounce, el, fill, getJson } from "/assets/common.js";
import { traceTree } from "/assets/delegation.js";

const RECENT_KEY = "l5d-playground-recent";
let wired = false;
let routesSeen = [];

export async function start() {
  if (!wired) {
    wired = true;
    const again = debounce(draw, 250);
    for (const id of ["pg-path", "pg-dtab"]) document.getElementById(id).addEventListener("input", again);
    document.getElementById("pg-router").addEventListener("change", draw);
  }
  await loadRouters();
  draw();
}

export function stop() {}

async function loadRouters() {
  const routes = await getJson("/routes.json").catch(() => ({}));
  const select = document.getElementById("pg-router");
  const current = select.value;
  fill(select, Object.keys(routes).map((r) => el("option", { value: r, selected: r === current }, r)));
  routesSeen = Object.values(routes).flat().map((r) => r.name);
  recentList();
}

function recent() {
  try {
    return JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]");
  } catch {
    return [];
  }
}

function remember(path) {
  const list = [path, ...recent().filter((p) => p !== path)].slice(0, 20);
  localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  recentList();
}

function recentList() {
  const names = [...new Set([...recent(), ...routesSeen])].slice(0, 200);
  fill(document.getElementById("pg-recent"), names.map((n) => el("option", { value: n })));
}

let seq = 0;

async function draw() {
  const path = document.getElementById("pg-path").value.trim();
  const dtab = document.getElementById("pg-dtab").value;
  const router = document.getElementById("pg-router").value;
  const status = document.getElementById("pg-status");
  const tree = document.getElementById("pg-tree");
  if (!path) return;
  const mine = ++seq;
  const q = new URLSearchParams({ path, dtab });
  if (router) q.set("router", router);
  try {
    const trace = await getJson(`/delegator.json?${q}`);
    if (mine !== seq) return; // a later keystroke's answer wins
    status.className = "muted";
    status.textContent = `${path} through router ${router || "(first)"}${dtab.trim() ? " with the override" : ""}:`;
    fill(tree, traceTree(trace));
    tree.dataset.path = path;
    remember(path);
  } catch (e) {
    if (mine !== seq) return;
    status.className = "error";
    status.textContent = e.message;
    fill(tree);
  }
}
