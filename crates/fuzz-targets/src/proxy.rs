//! The proxy's request handling before a request is routed, on arbitrary
//! heads: the override and context headers (`overrides.rs`,
//! `headers.rs`, `deadline.rs`), then the steps of the router's lookup
//! (authority, identifiers) and the stamping of the request that leaves.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, header};
use l5d_dtab::{Path, Prefix};
use linkerd_proxy::config::{HeaderSource, IdentifierConfig};
use linkerd_proxy::deadline::{self, Malformed};
use linkerd_proxy::headers::{
    self, DTAB_LOCAL, Destination, L5D_CLIENT_ID, L5D_CTX_DTAB, L5D_DTAB,
};
use linkerd_proxy::identify::{self, Identifier};
use linkerd_proxy::overrides::{self, AddressOverrides};

use crate::head;

/// `l5d-dtab`, `l5d-ctx-dtab`, `dtab-local`, `l5d-ctx-deadline`,
/// `grpc-timeout` and `Via` as a server reads them, and what the next
/// proxy reads from what this one writes.
pub fn proxy_overrides(data: &[u8]) {
    let Some(head) = head::parse(data) else {
        return;
    };
    let headers = &head.parts.headers;
    let policies = [
        AddressOverrides::Refused,
        AddressOverrides::Any,
        AddressOverrides::Prefixes([Prefix::read("/$/inet/127.0.0.1/*").expect("a prefix")].into()),
    ];
    for policy in &policies {
        let Ok(Some(local)) = overrides::local_dtab(headers, policy) else {
            continue;
        };
        if *policy == AddressOverrides::Refused {
            let to_address = local
                .dentries()
                .iter()
                .flat_map(|d| d.dst.leaves())
                .find(|leaf| overrides::is_address(leaf));
            assert!(to_address.is_none(), "an override to {to_address:?} passed");
        }
        // The next proxy reads the dtab this one sends as l5d-ctx-dtab, and
        // sends it on unchanged from then on. (Not necessarily from the
        // first hop: a weight shown rounded, `1.00*` for 1.0000001, reads
        // back as exactly 1 and then shows as no weight, as in the dtab
        // target; the meaning is the same.)
        let hop = |dtab: &l5d_dtab::Dtab| {
            let value = headers::dtab_value(dtab)?;
            let mut next = HeaderMap::new();
            next.insert(L5D_CTX_DTAB, value);
            Some(
                overrides::local_dtab(&next, policy)
                    .unwrap_or_else(|e| panic!("l5d-ctx-dtab {:?} is refused: {e}", dtab.show()))
                    .expect("a context dtab"),
            )
        };
        if let Some(second) = hop(&local) {
            let third = hop(&second).expect("a dtab that crossed one hop crosses the next");
            assert_eq!(third.show(), second.show());
        }
    }
    let mut cleared = headers.clone();
    headers::clear_context(&mut cleared);
    assert!(
        !cleared
            .keys()
            .any(|k| k.as_str().starts_with("l5d-ctx-") || k == L5D_DTAB || k == DTAB_LOCAL),
        "clearContext left a context header"
    );
    assert!(matches!(
        overrides::local_dtab(&cleared, &AddressOverrides::Refused),
        Ok(None)
    ));
    let _ = headers::via_hops(headers);
    deadlines(headers);
}

/// Every combination of trust and protocol; a deadline this proxy stamps
/// is read back by the next one, well formed.
fn deadlines(headers: &HeaderMap) {
    let start = Instant::now();
    for (trusted, grpc, total) in [
        (true, true, None),
        (true, false, Some(Duration::from_secs(3))),
        (false, true, Some(Duration::from_millis(1))),
        (false, false, None),
    ] {
        let mut malformed = Malformed::default();
        let Some(found) =
            deadline::of_request(headers, trusted, grpc, total, start, &mut malformed)
        else {
            continue;
        };
        let mut sent = headers.clone();
        deadline::stamp(&mut sent, found, start, grpc);
        let mut malformed = Malformed::default();
        let again = deadline::of_request(&sent, true, true, None, start, &mut malformed);
        assert!(again.is_some(), "a stamped deadline is not read back");
        assert_eq!(
            malformed,
            Malformed::default(),
            "a stamped deadline is malformed"
        );
    }
}

/// The router's lookup on an arbitrary head (`Via`, the authority, the
/// overrides, every kind of identifier, consumed segments), then the
/// headers stamped on the request that leaves.
pub fn proxy_request_head(data: &[u8]) {
    let Some(head) = head::parse(data) else {
        return;
    };
    let mut parts = head.parts;
    let _ = headers::via_hops(&parts.headers);
    if identify::check_authority(&mut parts).is_err() {
        return;
    }
    let Ok(local) = overrides::local_dtab(&parts.headers, &AddressOverrides::Refused) else {
        return;
    };
    if identify::is_unroutable(&parts.method, &parts.uri) {
        return;
    }
    let ctx_dtab = local.as_ref().and_then(headers::dtab_value);
    for kind in identifiers() {
        let Ok(found) = Identifier::new(Path::utf8(["svc"]), vec![kind]).identify(&parts) else {
            continue;
        };
        let shown = found.name.show();
        assert_eq!(
            Path::read(&shown).ok(),
            Some(found.name.clone()),
            "{shown:?}"
        );
        let service = headers::path_value(&found.name);
        assert_eq!(
            service.as_bytes(),
            shown.as_bytes(),
            "a name as a header value"
        );
        if found.consume > 0 {
            let _ = identify::consume_segments(&parts.uri, found.consume);
        }
        let mut sent = parts.headers.clone();
        let dst = Destination {
            service: &service,
            client: &service,
            residual: None,
            ctx_dtab: ctx_dtab.as_ref(),
            client_id: None,
        };
        headers::stamp_request(&mut sent, &dst, "1.1 linkerd");
        for gone in [L5D_DTAB, DTAB_LOCAL, L5D_CLIENT_ID, header::CONNECTION] {
            assert!(!sent.contains_key(&gone), "{gone} left the proxy");
        }
        assert_eq!(sent.get_all(headers::L5D_DST_SERVICE).iter().count(), 1);
    }
}

/// One of each kind, reading the places a client controls.
fn identifiers() -> Vec<IdentifierConfig> {
    let host = HeaderSource::Named(header::HOST);
    vec![
        IdentifierConfig::HeaderToken { header: host },
        IdentifierConfig::HeaderToken {
            header: HeaderSource::Authority,
        },
        IdentifierConfig::MethodAndHost {
            http_uri_in_dst: false,
        },
        IdentifierConfig::MethodAndHost {
            http_uri_in_dst: true,
        },
        IdentifierConfig::Path {
            segments: 2,
            consume: true,
        },
        IdentifierConfig::Header {
            header: HeaderSource::Named(HeaderName::from_static("l5d-name")),
        },
        IdentifierConfig::HeaderPath {
            header: HeaderSource::Path,
            segments: None,
        },
        IdentifierConfig::HeaderPath {
            header: HeaderSource::Path,
            segments: Some(1),
        },
    ]
}
