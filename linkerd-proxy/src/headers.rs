//! Linkerd's headers (spec 4.12): the context a request carries between
//! proxies (`l5d-ctx-*`), the user's override (`l5d-dtab`), what the proxy
//! tells the application (`l5d-dst-*`, `l5d-reqid`), loop protection
//! (`Via`) and the hop-by-hop headers a proxy must not forward.
//!
//! `l5d-client-id` carries the caller's verified identity to the
//! application: the proxy sets it from the client certificate a router's
//! TLS server verified and removes any value the client sent, on every
//! server, so that an application may base policy on it.
//!
//! Override headers are honoured only on servers that trust their clients;
//! servers with `clearContext` strip them, and every other `l5d-*` request
//! header, before anything reads them, and let no `l5d-*` header out in
//! their responses but the proxy's own error headers.
//!
//! What an override may do is [`crate::overrides`]' concern.
//!
//! A leaf of the crate: it depends on no other module, so the error
//! classification ([`crate::error`]) can use its header names without a
//! cycle.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use l5d_dtab::{Dtab, Path};
use l5d_runtime::Peer;

pub const L5D_DTAB: HeaderName = HeaderName::from_static("l5d-dtab");
pub const L5D_CTX_DTAB: HeaderName = HeaderName::from_static("l5d-ctx-dtab");
pub const DTAB_LOCAL: HeaderName = HeaderName::from_static("dtab-local");
pub const L5D_SAMPLE: HeaderName = HeaderName::from_static("l5d-sample");
pub const L5D_DST_SERVICE: HeaderName = HeaderName::from_static("l5d-dst-service");
pub const L5D_DST_CLIENT: HeaderName = HeaderName::from_static("l5d-dst-client");
pub const L5D_DST_RESIDUAL: HeaderName = HeaderName::from_static("l5d-dst-residual");
pub const L5D_REQID: HeaderName = HeaderName::from_static("l5d-reqid");
pub const L5D_ERR: HeaderName = HeaderName::from_static("l5d-err");
pub const L5D_RETRYABLE: HeaderName = HeaderName::from_static("l5d-retryable");
pub const L5D_CLIENT_ID: HeaderName = HeaderName::from_static("l5d-client-id");
pub const L5D_SUCCESS_CLASS: HeaderName = HeaderName::from_static("l5d-success-class");
pub const L5D_CTX_DEADLINE: HeaderName = HeaderName::from_static("l5d-ctx-deadline");
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes every context and override header, and every other `l5d-*`
/// header a client outside the mesh could send to mislead the proxy or the
/// application (`l5d-dst-*`, `l5d-reqid`, `l5d-client-id`, ...): a server
/// with `clearContext: true` is an untrusting edge.
pub fn clear_context(headers: &mut HeaderMap) {
    headers.remove(DTAB_LOCAL);
    remove_l5d(headers, &[]);
}

/// Removes every `l5d-*` header but those in `keep` (request or response
/// head, or trailers).
pub fn remove_l5d(headers: &mut HeaderMap, keep: &[HeaderName]) {
    // Collect first: a HeaderMap cannot be mutated while iterated.
    let l5d: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("l5d-") && !keep.contains(k))
        .cloned()
        .collect();
    for name in l5d {
        headers.remove(name);
    }
}

/// How many proxies the request already went through, from `Via`.
pub fn via_hops(headers: &HeaderMap) -> usize {
    headers
        .get_all(header::VIA)
        .iter()
        .map(|v| v.as_bytes().split(|b| *b == b',').count())
        .sum()
}

/// What the proxy learned about a request, stamped on it before it
/// leaves: header values made once per route and per bound id, so a
/// request only clones them.
#[derive(Debug)]
pub struct Destination<'a> {
    /// `l5d-dst-service`.
    pub service: &'a HeaderValue,
    /// `l5d-dst-client`.
    pub client: &'a HeaderValue,
    /// `l5d-dst-residual`, when the id has a residual path.
    pub residual: Option<&'a HeaderValue>,
    /// `l5d-ctx-dtab`, when the request has a local dtab.
    pub ctx_dtab: Option<&'a HeaderValue>,
    /// `l5d-client-id`, when the caller presented a verified certificate
    /// (see [`client_id`]). Any value the client sent is removed either
    /// way.
    pub client_id: Option<HeaderValue>,
}

/// Prepares a request's headers for the upstream hop.
pub fn stamp_request(headers: &mut HeaderMap, dst: &Destination<'_>, via: &'static str) {
    // One pass over the names tells which headers are there to remove or
    // keep; removing an absent header still costs a hash lookup.
    let mut present = Present::default();
    for name in headers.keys() {
        present.hop_by_hop |= is_hop_by_hop(name);
        present.overrides |= name == L5D_DTAB || name == DTAB_LOCAL;
        present.ctx_dtab |= name == L5D_CTX_DTAB;
        present.residual |= name == L5D_DST_RESIDUAL;
        present.reqid |= name == L5D_REQID;
        present.client_id |= name == L5D_CLIENT_ID;
    }
    if present.hop_by_hop {
        remove_hop_by_hop(headers);
    }
    if present.overrides {
        headers.remove(L5D_DTAB);
        headers.remove(DTAB_LOCAL);
    }
    // Room for what follows, so the map grows at most once.
    headers.reserve(6);
    match dst.ctx_dtab {
        Some(v) => {
            headers.insert(L5D_CTX_DTAB, v.clone());
        }
        None if present.ctx_dtab => {
            headers.remove(L5D_CTX_DTAB);
        }
        None => {}
    }
    headers.insert(L5D_DST_SERVICE, dst.service.clone());
    headers.insert(L5D_DST_CLIENT, dst.client.clone());
    match dst.residual {
        Some(v) => {
            headers.insert(L5D_DST_RESIDUAL, v.clone());
        }
        None if present.residual => {
            headers.remove(L5D_DST_RESIDUAL);
        }
        None => {}
    }
    match &dst.client_id {
        Some(v) => {
            headers.insert(L5D_CLIENT_ID, v.clone());
        }
        // Removes every value, so a client cannot speak for another.
        None if present.client_id => {
            headers.remove(L5D_CLIENT_ID);
        }
        None => {}
    }
    if !present.reqid {
        headers.insert(L5D_REQID, request_id());
    }
    headers.append(header::VIA, HeaderValue::from_static(via));
}

/// Which of the headers `stamp_request` handles a request carries.
#[derive(Default)]
struct Present {
    hop_by_hop: bool,
    overrides: bool,
    ctx_dtab: bool,
    residual: bool,
    reqid: bool,
    client_id: bool,
}

/// The `l5d-client-id` value for a request from `peer`: the primary name
/// (first URI SAN, else first DNS SAN) of the client certificate its TLS
/// server verified; `None` without one, or for a name that is not a valid
/// header value (SANs are ASCII, so only a control character would be).
pub fn client_id(peer: Option<&Peer>) -> Option<HeaderValue> {
    let name = peer?.identity.as_ref()?.primary()?;
    HeaderValue::from_str(name).ok()
}

/// 16 lower-case hex digits of a random 64-bit id.
fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = fastrand::u64(..);
    let mut out = [0u8; 16];
    for b in out.iter_mut().rev() {
        *b = HEX[(id & 15) as usize];
        id >>= 4;
    }
    HeaderValue::from_bytes(&out).expect("hex digits are a valid header value")
}

/// A path as a header value. Shown paths are visible ASCII (labels are
/// escaped), so this only fails for a path no namer could produce; the
/// fallback keeps the header present rather than malformed.
pub fn path_value(path: &Path) -> HeaderValue {
    HeaderValue::from_str(&path.show()).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

/// A local dtab as an `l5d-ctx-dtab` value (`None` when empty).
pub fn dtab_value(dtab: &Dtab) -> Option<HeaderValue> {
    if dtab.is_empty() {
        return None;
    }
    HeaderValue::from_str(&dtab.show()).ok()
}

/// Prepares a response's headers for the downstream hop.
pub fn stamp_response(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers);
}

/// Removes the headers that describe one connection, not the message
/// (RFC 9110 7.6.1), including any the `Connection` headers name.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names is cheaper than a
    // hash lookup for each of them.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::PROXY_AUTHORIZATION,
        header::UPGRADE,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    if let Some(te) = headers.get(header::TE) {
        // Only `TE: trailers` survives a hop (gRPC needs it on HTTP/2).
        if !te.as_bytes().eq_ignore_ascii_case(b"trailers") {
            headers.remove(header::TE);
        }
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::PROXY_AUTHORIZATION
        || name == header::UPGRADE
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// A header map from `(name, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::map as headers;
    use super::*;

    #[test]
    fn clear_context_strips_every_override() {
        let mut h = headers(&[
            ("l5d-dtab", "/a => /b"),
            ("l5d-ctx-dtab", "/a => /b"),
            ("l5d-ctx-deadline", "1 2"),
            ("dtab-local", "/a => /b"),
            ("l5d-dst-service", "/svc/forged"),
            ("l5d-client-id", "spiffe://forged"),
            ("L5D-Sample", "1"),
            ("x-other", "kept"),
        ]);
        clear_context(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-other"));
    }

    #[test]
    fn remove_l5d_keeps_only_what_it_is_told() {
        let mut h = headers(&[
            ("l5d-err", "No%20Ingress%20rule"),
            ("l5d-retryable", "true"),
            ("l5d-success-class", "0.0"),
            ("l5d-backend-secret", "x"),
            ("content-type", "text/plain"),
        ]);
        remove_l5d(&mut h, &[L5D_ERR]);
        let names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["l5d-err", "content-type"]);
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = headers(&[
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "gzip"),
            ("x-kept", "1"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
        let mut h = headers(&[("te", "trailers")]);
        remove_hop_by_hop(&mut h);
        assert!(h.contains_key("te"));
        let mut h = headers(&[
            ("connection", "x-a"),
            ("connection", "x-b"),
            ("x-a", "1"),
            ("x-b", "1"),
            ("x-c", "1"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-c"]);
    }

    #[test]
    fn via_counts_every_hop() {
        let h = headers(&[("via", "1.1 a, 1.1 b"), ("via", "1.1 c")]);
        assert_eq!(via_hops(&h), 3);
    }

    fn stamped(h: &mut HeaderMap, client_id: Option<HeaderValue>) -> Vec<String> {
        let v = HeaderValue::from_static("/x");
        let dst = Destination {
            service: &v,
            client: &v,
            residual: None,
            ctx_dtab: None,
            client_id,
        };
        stamp_request(h, &dst, "1.1 linkerd");
        h.get_all(L5D_CLIENT_ID)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn l5d_client_id_is_the_verified_identity_or_absent_never_the_clients() {
        let forged = || headers(&[("l5d-client-id", "spiffe://forged"), ("l5d-client-id", "x")]);
        assert!(stamped(&mut forged(), None).is_empty());
        let peer = |names: &[&str]| Peer {
            identity: Some(std::sync::Arc::new(l5d_runtime::ClientIdentity {
                names: names.iter().map(|n| n.to_string()).collect(),
            })),
            ..Peer::plain(([127, 0, 0, 1], 1).into(), ([127, 0, 0, 1], 2).into())
        };
        let id = client_id(Some(&peer(&["a.test", "spiffe://l5d.test/a"])));
        assert_eq!(stamped(&mut forged(), id), ["spiffe://l5d.test/a"]);
        let id = client_id(Some(&peer(&["a.test"])));
        assert_eq!(stamped(&mut headers(&[]), id), ["a.test"]);
        let plain = Peer::plain(([127, 0, 0, 1], 1).into(), ([127, 0, 0, 1], 2).into());
        assert_eq!(client_id(Some(&plain)), None);
        assert_eq!(client_id(None), None);
    }
}
