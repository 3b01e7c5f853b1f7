//! The dtab API on the admin listener, for the dashboard's editor: the
//! same routes and handlers as `io.l5d.httpController`, behind the same
//! authorisation ([`crate::auth::Access`], a bearer token where
//! configured), plus a same-origin check on every write, so that a page of
//! another site the operator visits cannot make the browser write a dtab
//! (the admin listener is on loopback, where writes without a token are
//! allowed by default).
//!
//! A write passes the check when its `Origin` names this server (scheme
//! and the `Host` it was sent to), or when it carries neither `Origin` nor
//! `Sec-Fetch-Site` (curl and scripts, which no web page can be). Either
//! way its `Host` must be an IP address or `localhost`: a page whose DNS
//! name was rebound to this server's address sends its own name as both
//! `Origin` and `Host`, and only the name gives it away (DNS rebinding).
//! Without an HTTP controller configured there is no API to reach: 404.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;

use super::ApiSlot;

/// Runs `request` through the API's router, once the origin is checked.
pub(super) async fn forward(State(api): State<ApiSlot>, request: Request<Body>) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe && let Err(why) = same_origin(request.headers()) {
        metrics::counter!("namerd_admin_cross_origin_refused_total").increment(1);
        tracing::warn!(method = %request.method(), path = request.uri().path(), %why, "admin write refused");
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let router = api.borrow().clone();
    let Some(router) = router else {
        return (
            StatusCode::NOT_FOUND,
            "the dtab API is not served here: configure the io.l5d.httpController interface \
             (or wait for the store to open)\n",
        )
            .into_response();
    };
    match router.oneshot(request).await {
        Ok(rsp) => rsp,
        Err(never) => match never {},
    }
}

/// Whether a write comes from a page of this server, or from no page.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST);
    if let Some(h) = host
        && !addressed_directly(h)
    {
        return Err(format!(
            "cross-origin write refused: Host {h} is a DNS name; the admin server takes writes \
             only when addressed by IP or as localhost (DNS rebinding)"
        ));
    }
    match text(header::ORIGIN) {
        Some(origin) => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match (authority, host) {
                (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
                _ => Err(format!(
                    "cross-origin write refused: Origin {origin} is not this admin server ({})",
                    host.unwrap_or("no Host")
                )),
            }
        }
        None => match text(header::HeaderName::from_static("sec-fetch-site")) {
            None | Some("same-origin" | "none") => Ok(()),
            Some(site) => Err(format!(
                "cross-origin write refused: Sec-Fetch-Site is {site} and the request has no Origin"
            )),
        },
    }
}

/// `host[:port]` names this server by an IP address or as `localhost`.
fn addressed_directly(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:9991` loses its port, `[::1]` keeps its colons.
        Some((name, port)) if !port.contains(']') => name,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn writes_from_this_origin_or_no_page_pass() {
        let ok = [
            headers(&[
                ("host", "127.0.0.1:9991"),
                ("origin", "http://127.0.0.1:9991"),
            ]),
            headers(&[
                ("host", "LOCALHOST:9991"),
                ("origin", "http://localhost:9991"),
            ]),
            headers(&[("host", "127.0.0.1:9991")]),
            headers(&[
                ("host", "127.0.0.1:9991"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[("host", "[::1]:9991"), ("origin", "http://[::1]:9991")]),
            headers(&[("host", "10.0.0.7")]),
        ];
        for h in ok {
            assert_eq!(same_origin(&h), Ok(()), "{h:?}");
        }
    }

    #[test]
    fn writes_from_another_origin_are_refused() {
        let refused = [
            headers(&[
                ("host", "127.0.0.1:9991"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[
                ("host", "127.0.0.1:9991"),
                ("origin", "http://127.0.0.1:9990"),
            ]),
            headers(&[("host", "127.0.0.1:9991"), ("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:9991")]),
            headers(&[("host", "127.0.0.1:9991"), ("sec-fetch-site", "cross-site")]),
            // DNS rebinding: the attacker's name, rebound to this server.
            headers(&[
                ("host", "evil.example:9991"),
                ("origin", "http://evil.example:9991"),
            ]),
            headers(&[("host", "evil.example:9991")]),
        ];
        for h in refused {
            let why = same_origin(&h).expect_err("refused");
            assert!(why.starts_with("cross-origin write refused"), "{why}");
        }
    }
}
