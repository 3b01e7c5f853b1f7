// The dtab editor. As the person types, the text is parsed by namerd's own
// parser (POST /admin/dtab/parse) and its message is shown with the place
// it points at marked; an invalid dtab cannot be saved. Saving is
// compare-and-set on the version the text was edited from: when someone
// else saved first, their version is shown beside this one with the
// difference, and the person can rebase on it or take it.
import { debounce, diffView, el, fill } from "/assets/common.js";
import { load, picked, save } from "/assets/api.js";

const $ = (id) => document.getElementById(id);
let base = null; // {version} the text was edited from; version null for a new namespace
let wired = false;
let checked = { text: null, ok: false };

export function start() {
  if (!wired) wire();
  if (picked.ns && picked.ns !== $("ed-ns").value) {
    $("ed-ns").value = picked.ns;
    open();
  }
  refreshList();
}

export function stop() {}

function wire() {
  wired = true;
  $("ed-load").addEventListener("click", open);
  $("ed-ns").addEventListener("keydown", (e) => e.key === "Enter" && open());
  $("ed-text").addEventListener("input", debounce(check, 150));
  $("ed-text").addEventListener("input", () => ($("ed-save").disabled = true));
  $("ed-save").addEventListener("click", write);
  $("cf-rebase").addEventListener("click", rebase);
  $("cf-take").addEventListener("click", take);
}

async function refreshList() {
  const list = await fetch("/admin/namespaces.json").then((r) => r.json()).catch(() => ({ namespaces: [] }));
  fill($("ns-list"), list.namespaces.map((n) => el("option", { value: n.namespace })));
}

async function open() {
  const name = $("ed-ns").value.trim();
  if (!name) return;
  picked.ns = name;
  $("ed-conflict").hidden = true;
  fill($("ed-result"));
  try {
    const current = await load(name);
    base = { version: current?.version ?? null, theirs: null };
    $("ed-text").value = current?.text ?? "";
    $("ed-version").textContent = current ? `editing version ${current.version}` : "new namespace: saving creates it";
  } catch (e) {
    result(`Cannot load ${name}: ${e.message}`, true);
    return;
  }
  await check();
}

/** Parses the text with namerd's parser and shows the verdict; true when it parses. */
async function check() {
  const text = $("ed-text").value;
  const rsp = await fetch("/admin/dtab/parse", { method: "POST", body: text });
  const v = await rsp.json();
  if (text !== $("ed-text").value) return false; // typed on meanwhile; the next check decides
  checked = { text, ok: v.ok };
  const msg = $("ed-check");
  const marked = $("ed-marked");
  if (v.ok) {
    msg.className = "ok";
    msg.textContent = `valid: ${v.dentries} dentries`;
    marked.hidden = true;
  } else {
    msg.className = "error";
    msg.textContent = `line ${v.line}, column ${v.column}: ${v.message}`;
    msg.dataset.line = v.line;
    msg.dataset.column = v.column;
    const at = v.utf16Offset;
    const ch = text.slice(at, at + 1);
    fill(marked, text.slice(0, at), el("span", { class: "marker", title: "the parser stopped here" }, ch === "" ? "␄" : ch === "\n" ? "↵\n" : ch), text.slice(at + 1));
    marked.hidden = false;
  }
  $("ed-save").disabled = !v.ok || !$("ed-ns").value.trim();
  return v.ok;
}

async function write() {
  const name = $("ed-ns").value.trim();
  const text = $("ed-text").value;
  if (!(checked.text === text ? checked.ok : await check())) {
    result("Not saved: the dtab does not parse.", true);
    return;
  }
  $("ed-save").disabled = true;
  try {
    const r = await save(name, text, base?.version ?? null);
    if (r.ok) {
      base = { version: r.version };
      $("ed-version").textContent = `editing version ${r.version}`;
      $("ed-conflict").hidden = true;
      result(`Saved: ${name} is now version ${r.version}.`);
    } else await conflict(name, text, r);
  } catch (e) {
    result(`Not saved (${e.status ?? "error"}): ${e.message}`, true);
  } finally {
    $("ed-save").disabled = false;
  }
}

async function conflict(name, mine, r) {
  const theirs = await load(name);
  base.theirs = theirs;
  result(`Conflict: ${r.message}`, true);
  $("cf-base").textContent = base.version ? `version ${base.version}` : "nothing (new namespace)";
  $("cf-theirs-version").textContent = theirs ? `version ${theirs.version}` : "deleted";
  $("cf-mine").textContent = mine;
  $("cf-theirs").textContent = theirs?.text ?? "";
  fill($("cf-diff"), diffView(theirs?.text ?? "", mine));
  $("ed-conflict").hidden = false;
}

function rebase() {
  const theirs = base.theirs;
  base = { version: theirs?.version ?? null };
  $("ed-conflict").hidden = true;
  $("ed-version").textContent = `editing version ${base.version} (rebased: your text over theirs)`;
  result("Rebased on their version: review, then save again.");
}

function take() {
  const theirs = base.theirs;
  base = { version: theirs?.version ?? null };
  $("ed-text").value = theirs?.text ?? "";
  $("ed-conflict").hidden = true;
  $("ed-version").textContent = `editing version ${base.version}`;
  result("Took their version.");
  check();
}

function result(text, bad = false) {
  const r = $("ed-result");
  r.className = bad ? "error" : "ok";
  r.textContent = text;
}
