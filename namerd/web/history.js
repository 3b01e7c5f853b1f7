// History: a namespace's versions, newest first, each with its diff from
// the version before, and a rollback that writes an old version's dtab
// compare-and-set on the newest version (so a rollback over a change it
// has not seen is refused, not silently lost).
import { diffView, el, fill, getJson } from "/assets/common.js";
import { auth, namespaceSelect, ns, picked, save, show } from "/assets/api.js";

const $ = (id) => document.getElementById(id);
let wired = false;

export async function start() {
  if (!wired) {
    wired = true;
    $("hi-ns").addEventListener("change", () => {
      picked.ns = $("hi-ns").value;
      draw();
    });
  }
  if (picked.ns) $("hi-ns").value = picked.ns;
  await namespaceSelect($("hi-ns"));
  if (picked.ns) $("hi-ns").value = picked.ns;
  draw();
}

export function stop() {}

async function draw() {
  const name = $("hi-ns").value;
  if (!name) return;
  const status = $("hi-status");
  let entries;
  try {
    // The API answers the newest page oldest first.
    const page = await getJson(`${ns(name)}/history?limit=50`, { headers: auth({ Accept: "application/json" }) });
    entries = page.reverse();
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
    return;
  }
  status.className = "muted";
  status.textContent = `${entries.length} most recent versions of ${name}, newest first`;
  const newest = entries[0];
  fill(
    $("hi-list"),
    entries.map((e, i) => {
      const older = entries[i + 1];
      const text = e.dtab ? show(e.dtab) : "";
      const before = older?.dtab ? show(older.dtab) : "";
      return el(
        "div",
        { class: "card history-entry", "data-version": e.version },
        el("h3", {}, `${e.version} · ${e.op} · ${new Date(e.committedAt).toLocaleString()}${e.author ? ` · by ${e.author}` : ""}`, i === 0 ? " (current)" : ""),
        diffView(before, text),
        i > 0 && e.dtab
          ? el("button", { type: "button", class: "rollback", onclick: () => rollback(name, e, newest) }, `Roll back to ${e.version}`)
          : "",
      );
    }),
  );
}

async function rollback(name, entry, newest) {
  const status = $("hi-status");
  try {
    const r = await save(name, show(entry.dtab), newest.version);
    if (r.ok) {
      status.className = "ok";
      status.textContent = `Rolled back: ${name} has ${entry.version}'s dtab as version ${r.version}.`;
    } else {
      status.className = "error";
      status.textContent = `Not rolled back: ${name} changed since this page was drawn (${r.message}); the list is redrawn.`;
    }
  } catch (e) {
    status.className = "error";
    status.textContent = `Not rolled back (${e.status ?? "error"}): ${e.message}`;
    return;
  }
  const keep = status.textContent;
  await draw();
  status.textContent = keep;
}
