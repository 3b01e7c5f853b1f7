//! The dashboard at `/`: an HTML shell and plain ES modules (no build
//! step), embedded in the binary. The pages read `/admin/namespaces.json`,
//! `/interpreter_state.json` and `/admin/dtab/parse`, and read and write
//! dtabs through the API's routes on this listener (`writes.rs`); see
//! docs/dashboard-namerd.md.

use l5d_runtime::web::Asset;

pub(super) const INDEX: &str = include_str!("../../web/index.html");

pub(super) const ASSETS: &[Asset] = &[
    Asset {
        name: "namerd.js",
        body: include_str!("../../web/namerd.js"),
    },
    Asset {
        name: "api.js",
        body: include_str!("../../web/api.js"),
    },
    Asset {
        name: "namespaces.js",
        body: include_str!("../../web/namespaces.js"),
    },
    Asset {
        name: "editor.js",
        body: include_str!("../../web/editor.js"),
    },
    Asset {
        name: "history.js",
        body: include_str!("../../web/history.js"),
    },
    Asset {
        name: "delegator.js",
        body: include_str!("../../web/delegator.js"),
    },
];
