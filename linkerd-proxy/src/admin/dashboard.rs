//! The dashboard at `/`: an HTML shell and plain ES modules (no build
//! step), embedded in the binary. The pages read the same JSON endpoints
//! scripts do (`/admin/stats.json`, `/client_state.json`, `/routes.json`,
//! `/interpreter_state.json`, `/delegator.json`,
//! `/admin/recent_requests.json`) and draw everything in the browser; see
//! docs/dashboard-proxy.md.

use l5d_runtime::web::Asset;

pub(super) const INDEX: &str = include_str!("../../web/index.html");

pub(super) const ASSETS: &[Asset] = &[
    Asset {
        name: "proxy.js",
        body: include_str!("../../web/proxy.js"),
    },
    Asset {
        name: "overview.js",
        body: include_str!("../../web/overview.js"),
    },
    Asset {
        name: "playground.js",
        body: include_str!("../../web/playground.js"),
    },
    Asset {
        name: "requests.js",
        body: include_str!("../../web/requests.js"),
    },
];
