// What the browser scripts share: launching Debian's Chromium, bounded
// waits, and a steady load through the proxy.
import http from "node:http";

/**
 * How long any one thing the page should show may take to show. It is
 * generous (the pages poll every 2-3 s) so that a machine with one core
 * kept busy by another process still passes; a wait never sleeps a fixed
 * time, it polls what the page shows.
 */
export const WAIT_MS = 60_000;

export async function launch(chromium, executablePath) {
  return chromium.launch({
    executablePath,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** Polls `cond` every 100 ms until it is true, failing after WAIT_MS with `what`. */
export async function until(cond, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last = null;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
}

/** Sends `perSecond` requests a second with Host `host` through `proxy` (host:port) for `ms`. */
export async function sendLoad(proxy, host, perSecond, ms) {
  const [h, port] = proxy.split(":");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const end = Date.now() + ms;
  let sent = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = http.request({ host: h, port, path: "/", agent, headers: { Host: host } }, (rsp) => {
        rsp.resume();
        rsp.on("end", resolve);
      });
      req.on("error", resolve);
      req.end();
    });
  while (Date.now() < end) {
    const started = Date.now();
    await Promise.all(Array.from({ length: Math.max(1, Math.round(perSecond / 10)) }, one));
    sent += Math.max(1, Math.round(perSecond / 10));
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
  }
  agent.destroy();
  return sent;
}
