// The dtab API as the dashboard calls it: on this admin server's origin
// (/api/1/...), with the token typed in the header, so that a write goes
// through the API's own authorisation.
import { getJson } from "/assets/common.js";

export function auth(headers = {}) {
  const token = document.getElementById("token").value.trim();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

export const ns = (name) => `/api/1/dtabs/${encodeURIComponent(name)}`;

/** Dentries as text, one per line. */
export const show = (dentries) => dentries.map((d) => `${d.prefix} => ${d.dst};`).join("\n");

/** A namespace's dtab as text and its version (ETag), or null when it does not exist. */
export async function load(name) {
  const rsp = await fetch(ns(name), { headers: auth({ Accept: "application/json" }) });
  if (rsp.status === 404) return null;
  const body = await rsp.text();
  if (!rsp.ok) throw new Error(body.trim() || rsp.statusText);
  return { text: show(JSON.parse(body)), version: rsp.headers.get("ETag") };
}

/**
 * Writes `text` to a namespace, compare-and-set on `version` (create when
 * null). Answers {ok, version} or {conflict, current} or throws.
 */
export async function save(name, text, version) {
  const headers = auth({ "Content-Type": "application/dtab" });
  if (version) headers["If-Match"] = version;
  const rsp = await fetch(ns(name), { method: version ? "PUT" : "POST", headers, body: text });
  if (rsp.ok) return { ok: true, version: rsp.headers.get("ETag") };
  const body = (await rsp.text()).trim();
  if (rsp.status === 412 || rsp.status === 409) return { conflict: true, message: body, current: rsp.headers.get("ETag") };
  const err = new Error(body || rsp.statusText);
  err.status = rsp.status;
  throw err;
}

export async function namespaces() {
  return (await getJson("/admin/namespaces.json")).namespaces;
}

/** Fills a `<select>` with the namespaces, keeping its choice. */
export async function namespaceSelect(select) {
  const list = await namespaces();
  const current = select.value || new URLSearchParams(location.search).get("ns") || list[0]?.namespace;
  select.replaceChildren(
    ...list.map((n) => {
      const o = document.createElement("option");
      o.value = n.namespace;
      o.textContent = n.namespace;
      o.selected = n.namespace === current;
      return o;
    }),
  );
  return list;
}

/** The namespace the person last picked, shared by the sections. */
export const picked = { ns: null };
