//! The admin dashboards' static files, embedded in the binaries so that
//! the pages work offline and in an air-gapped cluster (no CDN, no build
//! step): the page shells, plain ES modules and one style sheet.
//!
//! Each binary passes its own pages' [`Asset`]s to [`routes`]; the shared
//! ones (`common.js`: DOM building, polling and charts; `style.css`) are
//! added here. Every page is served with a Content-Security-Policy that
//! allows scripts from this origin only, so a name or dtab that slipped
//! past the pages' escaping could still not run as script; the pages build
//! their DOM with `textContent`, never `innerHTML`, so it does not slip.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file, served at `/assets/<name>` (or at `/` for the index).
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub name: &'static str,
    pub body: &'static str,
}

/// The files both dashboards use.
pub const SHARED: &[Asset] = &[
    Asset {
        name: "common.js",
        body: include_str!("../web/common.js"),
    },
    Asset {
        name: "delegation.js",
        body: include_str!("../web/delegation.js"),
    },
    Asset {
        name: "style.css",
        body: include_str!("../web/style.css"),
    },
];

/// What every page and asset is sent with: scripts and styles from this
/// origin only, no framing (the namerd editor writes), no sniffing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `/` serves `index` (an HTML shell); `/assets/<name>` serves `assets`
/// and [`SHARED`].
pub fn routes<S: Clone + Send + Sync + 'static>(
    index: &'static str,
    assets: &'static [Asset],
) -> Router<S> {
    Router::new()
        .route("/", get(move || async move { send("index.html", index) }))
        .route(
            "/assets/{name}",
            get(move |Path(name): Path<String>| async move {
                match assets.iter().chain(SHARED).find(|a| a.name == name) {
                    Some(a) => send(a.name, a.body),
                    None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
                }
            }),
        )
}

fn send(name: &str, body: &'static str) -> Response {
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let mut rsp = body.into_response();
    let headers = rsp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_assets_are_embedded() {
        for a in SHARED {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
    }
}
