// The proxy's dashboard: three sections switched by the URL's fragment.
import { tabs } from "/assets/common.js";
import * as overview from "/assets/overview.js";
import * as playground from "/assets/playground.js";
import * as requests from "/assets/requests.js";

const sections = { overview, playground, requests };
tabs(Object.keys(sections), (name) => {
  for (const [n, s] of Object.entries(sections)) (n === name ? s.start : s.stop)();
});
