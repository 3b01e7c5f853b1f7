// namerd's dashboard: four sections switched by the URL's fragment. The
// API token (when namerd's API has authentication) is kept for this tab
// only (sessionStorage) and sent as a bearer token with every API call.
import { tabs } from "/assets/common.js";
import * as namespaces from "/assets/namespaces.js";
import * as editor from "/assets/editor.js";
import * as history from "/assets/history.js";
import * as delegator from "/assets/delegator.js";

const token = document.getElementById("token");
token.value = sessionStorage.getItem("namerd-token") ?? "";
token.addEventListener("input", () => sessionStorage.setItem("namerd-token", token.value));

const sections = { namespaces, editor, history, delegator };
tabs(Object.keys(sections), (name) => {
  for (const [n, s] of Object.entries(sections)) (n === name ? s.start : s.stop)();
});
