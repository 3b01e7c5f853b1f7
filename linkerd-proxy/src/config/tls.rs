//! The proxy's reading of the `tls` blocks (`l5d-runtime`'s, with
//! Linkerd 1.x's names) and the rules it adds to them:
//!
//! - the mesh hop is TLS 1.3 only unless `protocols` says otherwise: a
//!   server that requires client certificates and a client that presents
//!   one are proxy-to-proxy (or proxy-to-namerd) links, where nothing old
//!   needs TLS 1.2;
//! - an endpoint client needs `commonName` unless `disableValidation` (the name it
//!   verifies and sends as SNI: a DNS name or an IP address, or a
//!   template of `{name}` captures where the caller allows them), and
//!   `disableValidation` cannot be combined
//!   with `clientAuth` (presenting an identity to an unverified server
//!   gives it away), as in Linkerd.

use l5d_runtime::config::{ConfigError, typed};
use l5d_runtime::tls::{ClientTlsConfig, ServerTlsConfig, TlsProtocol};
use serde_json::Value;

/// Whether the `tls` block `value` (as written) sets `protocols`.
pub(super) fn sets_protocols(value: Option<&Value>) -> bool {
    value
        .and_then(|v| v.get("protocols"))
        .is_some_and(|p| !p.is_null())
}

/// A server's `tls` block (read with the shared server keys) with the
/// mesh-hop rule; `explicit` when the block set `protocols`.
pub(super) fn server_rules(tls: &mut ServerTlsConfig, explicit: bool) {
    if tls.require_client_auth && !explicit {
        tls.protocols = vec![TlsProtocol::Tls13];
    }
}

/// A client's `tls` block at `field`. `{name}` captures in `commonName`
/// are left for the caller to check against its prefix. Without
/// `commonName`, a client that dials a name of its own (`dst`) verifies
/// that (`name_required` false); an endpoint client has only an address.
pub(super) fn client_tls(
    value: Value,
    field: &str,
    name_required: bool,
) -> Result<ClientTlsConfig, ConfigError> {
    let explicit = sets_protocols(Some(&value));
    let mut tls: ClientTlsConfig = typed(value, field)?;
    if tls.disable_validation && tls.client_auth.is_some() {
        return Err(ConfigError::new(
            format!("{field}.disableValidation"),
            "cannot be combined with clientAuth: the client certificate would be shown to an \
             unverified server",
        ));
    }
    match &tls.common_name {
        None if name_required && !tls.disable_validation => {
            return Err(ConfigError::missing(format!("{field}.commonName")));
        }
        // A template is checked against its prefix by the caller, and
        // after substitution when it is used.
        Some(name) if !name.contains('{') => {
            l5d_runtime::tls::server_name(name)
                .map_err(|e| ConfigError::new(format!("{field}.commonName"), e.kind))?;
        }
        _ => {}
    }
    if tls.client_auth.is_some() && !explicit {
        tls.protocols = Some(vec![TlsProtocol::Tls13]);
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_mesh_hop_is_tls13_unless_told_otherwise() {
        let s = |v: Value| {
            let mut tls: ServerTlsConfig = typed(v.clone(), "tls").unwrap();
            server_rules(&mut tls, sets_protocols(Some(&v)));
            tls.protocols
        };
        let both = vec![TlsProtocol::Tls12, TlsProtocol::Tls13];
        assert_eq!(s(json!({"certPath": "c", "keyPath": "k"})), both);
        let mtls = json!({"certPath": "c", "keyPath": "k", "caCertPath": "ca",
                          "requireClientAuth": true});
        assert_eq!(s(mtls.clone()), [TlsProtocol::Tls13]);
        let mut explicit = mtls;
        explicit["protocols"] = json!(["TLSv1.2", "TLSv1.3"]);
        assert_eq!(s(explicit), both);

        let c = |v| client_tls(v, "tls", true).unwrap().protocols;
        assert_eq!(c(json!({"commonName": "a", "trustCerts": ["ca"]})), None);
        let auth = json!({"commonName": "a", "trustCerts": ["ca"],
                          "clientAuth": {"certPath": "c", "keyPath": "k"}});
        assert_eq!(c(auth), Some(vec![TlsProtocol::Tls13]));
    }

    #[test]
    fn client_rules_name_the_field() {
        let err = |v| client_tls(v, "routers[0].client.tls", true).unwrap_err();
        let e = err(json!({"trustCerts": ["ca"]}));
        assert_eq!(e.field, "routers[0].client.tls.commonName");
        let e = err(json!({"disableValidation": true,
                           "clientAuth": {"certPath": "c", "keyPath": "k"}}));
        assert_eq!(e.field, "routers[0].client.tls.disableValidation");
        assert!(client_tls(json!({"disableValidation": true}), "tls", true).is_ok());
        assert!(client_tls(json!({"trustCerts": ["ca"]}), "tls", false).is_ok());
        let e = err(json!({"commonName": "a b", "trustCerts": ["ca"]}));
        assert_eq!(e.field, "routers[0].client.tls.commonName");
        let e = err(json!({"commonName": "a", "protocols": ["TLSv1.1"]}));
        assert_eq!(e.field, "routers[0].client.tls.protocols[0]");
    }
}
