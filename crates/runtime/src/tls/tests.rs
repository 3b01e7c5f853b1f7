//! Handshakes over real loopback sockets with the test PKI: with and
//! without client certificates, a wrong CA, unusable files, rotation.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::listen::{Connection, Listener, ListenerLimits};
use crate::testing::{CLIENT_NAMES, TestPki};

const LIMITS: ListenerLimits = ListenerLimits {
    max_connections: 100,
    max_connections_per_peer: 100,
    handshake_timeout: Duration::from_secs(30),
};

async fn listener(tls: &ServerTlsConfig) -> Listener {
    let tls = ServerTls::load(tls, ALPN_HTTP, "test.tls").expect("usable files");
    Listener::bind("127.0.0.1:0".parse().unwrap(), "test", Some(tls), LIMITS)
        .await
        .unwrap()
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Dials `listener` with `client`, and returns the client's stream and the
/// server's result of the handshake.
async fn dial(
    listener: &Listener,
    client: &ClientTlsConfig,
) -> (
    std::io::Result<ClientStream>,
    Result<Connection, crate::listen::HandshakeError>,
) {
    let client = ClientTls::new(client, ALPN_HTTP).expect("a usable client block");
    dial_with(listener, &client).await
}

/// [`dial`] with a client configuration already made.
async fn dial_with(
    listener: &Listener,
    client: &ClientTls,
) -> (
    std::io::Result<ClientStream>,
    Result<Connection, crate::listen::HandshakeError>,
) {
    let tcp = TcpStream::connect(listener.local_addr()).await.unwrap();
    let name = client.server_name("localhost").unwrap();
    let (client, server) = tokio::join!(client.connector().connect(name, tcp), async {
        listener.accept().await.handshake().await
    });
    (client, server)
}

/// Whether the client's stream carries data both ways: TLS 1.3 clients
/// finish before the server has checked their certificate, so a refusal
/// shows on first use.
async fn works(client: &mut ClientStream, server: &mut Connection) -> bool {
    if client.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut buf = [0; 4];
    if server.io.read_exact(&mut buf).await.is_err() {
        return false;
    }
    server.io.write_all(b"pong").await.is_ok() && client.read_exact(&mut buf).await.is_ok()
}

#[tokio::test]
async fn a_server_certificate_without_client_auth() {
    let pki = TestPki::new();
    let listener = listener(&pki.server_tls()).await;
    let (client, server) = dial(&listener, &pki.client_tls()).await;
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    assert!(works(&mut client, &mut server).await);
    assert_eq!(server.alpn.as_deref(), Some(&b"h2"[..]));
    assert!(server.peer.identity.is_none());
    // A client that trusts another CA refuses the server.
    let mut other = pki.client_tls();
    other.trust_certs = vec![pki.other_ca_cert.clone()];
    let (client, _) = dial(&listener, &other).await;
    assert!(client.is_err());
}

#[tokio::test]
async fn required_client_certificates_identify_the_peer() {
    let pki = TestPki::new();
    let listener = listener(&pki.mtls(true)).await;

    let (client, server) = dial(&listener, &pki.client_tls_with(&pki.client)).await;
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    assert!(works(&mut client, &mut server).await);
    let identity = server.peer.identity.as_ref().expect("an identity");
    assert_eq!(identity.names, CLIENT_NAMES);

    let (_, server) = dial(&listener, &pki.client_tls()).await;
    let err = server.expect_err("no client certificate").to_string();
    assert!(err.contains("certificate"), "{err}");

    let (_, server) = dial(&listener, &pki.client_tls_with(&pki.other_client)).await;
    assert!(server.is_err(), "a certificate from another CA is refused");
}

#[tokio::test]
async fn optional_client_certificates() {
    let pki = TestPki::new();
    let listener = listener(&pki.mtls(false)).await;
    let (client, server) = dial(&listener, &pki.client_tls()).await;
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    assert!(works(&mut client, &mut server).await);
    assert!(server.peer.identity.is_none());
    let (_, server) = dial(&listener, &pki.client_tls_with(&pki.client)).await;
    assert!(server.unwrap().peer.identity.is_some());
    let (_, server) = dial(&listener, &pki.client_tls_with(&pki.other_client)).await;
    assert!(
        server.is_err(),
        "a certificate from another CA is still refused"
    );
}

/// The reason a failed handshake is counted under, on the side that
/// failed it: the server without a client certificate or with one from
/// another CA, a TLS 1.2 client at a 1.3-only server; the client at a
/// server of another CA or another name.
#[tokio::test]
async fn failed_handshakes_are_classified_on_each_side() {
    let pki = TestPki::new();
    let server_reason = |server: Result<Connection, crate::listen::HandshakeError>| match server {
        Err(crate::listen::HandshakeError::Tls { source, .. }) => handshake_failure_reason(&source),
        other => panic!("expected a refused handshake, got {other:?}"),
    };
    let client_reason = |client: std::io::Result<ClientStream>| {
        handshake_failure_reason(&client.expect_err("a refused handshake"))
    };
    let mtls = listener(&pki.mtls(true)).await;
    let (_, server) = dial(&mtls, &pki.client_tls()).await;
    assert_eq!(server_reason(server), "no_certificate");
    let (_, server) = dial(&mtls, &pki.client_tls_with(&pki.other_client)).await;
    assert_eq!(server_reason(server), "unknown_ca");

    let mut only13 = pki.server_tls();
    only13.protocols = vec![TlsProtocol::Tls13];
    let only13 = listener(&only13).await;
    let mut client12 = pki.client_tls();
    client12.protocols = Some(vec![TlsProtocol::Tls12]);
    let (client, server) = dial(&only13, &client12).await;
    assert_eq!(server_reason(server), "protocol");
    assert_eq!(client_reason(client), "refused_by_peer");

    let mut other_ca = pki.client_tls();
    other_ca.trust_certs = vec![pki.other_ca_cert.clone()];
    let (client, _) = dial(&only13, &other_ca).await;
    assert_eq!(client_reason(client), "unknown_ca");
    let mut other_name = pki.client_tls();
    other_name.common_name = Some("other.test".into());
    let (client, _) = dial(&only13, &other_name).await;
    assert_eq!(client_reason(client), "name_mismatch");
}

#[tokio::test]
async fn protocols_are_offered_as_configured() {
    let pki = TestPki::new();
    let mut only13 = pki.server_tls();
    only13.protocols = vec![TlsProtocol::Tls13];
    let listener = listener(&only13).await;
    let mut client12 = pki.client_tls();
    client12.protocols = Some(vec![TlsProtocol::Tls12]);
    let (client, _) = dial(&listener, &client12).await;
    assert!(
        client.is_err(),
        "a TLS 1.2 client is refused by a 1.3-only server"
    );
    let (client, server) = dial(&listener, &pki.client_tls()).await;
    assert!(client.is_ok() && server.is_ok());
}

#[tokio::test]
async fn unusable_files_are_refused_naming_the_file_and_field() {
    let pki = TestPki::new();
    let load =
        |tls: ServerTlsConfig| ServerTls::load(&tls, ALPN_HTTP, "interfaces[0].tls").unwrap_err();

    let mut expired = pki.server_tls();
    expired.cert_path = pki.expired.cert.clone();
    expired.key_path = pki.expired.key.clone();
    let err = load(expired);
    assert_eq!(err.field, "interfaces[0].tls.certPath");
    assert!(
        err.message.contains("expired.pem") && err.message.contains("expired at"),
        "{err}"
    );

    let mut early = pki.server_tls();
    early.cert_path = pki.not_yet_valid.cert.clone();
    early.key_path = pki.not_yet_valid.key.clone();
    assert!(load(early).message.contains("is not valid until"));

    let mut mismatch = pki.server_tls();
    mismatch.key_path = pki.client.key.clone();
    let err = load(mismatch);
    assert_eq!(err.field, "interfaces[0].tls.keyPath");
    assert!(
        err.message.contains("does not match the certificate in"),
        "{err}"
    );

    let mut missing = pki.server_tls();
    missing.cert_path = pki.dir().join("absent.pem");
    let err = load(missing);
    assert_eq!(err.field, "interfaces[0].tls.certPath");
    assert!(err.message.contains("absent.pem: cannot read it"), "{err}");

    let mut no_ca = pki.server_tls();
    no_ca.require_client_auth = true;
    assert_eq!(load(no_ca).field, "interfaces[0].tls.requireClientAuth");

    let mut cipher = pki.server_tls();
    cipher.ciphers = Some(vec!["TLS_RSA_WITH_RC4_128_MD5".into()]);
    assert_eq!(load(cipher).field, "interfaces[0].tls.ciphers[0]");

    let mut client = pki.client_tls_with(&pki.client);
    client.trust_certs = vec![];
    let err = ClientTls::new(&client, ALPN_HTTP).unwrap_err();
    assert_eq!(err.field, "trustCerts");
}

fn served(stream: &ClientStream) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn cert_der(path: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

/// A rotated certificate is served to new connections within a few polls,
/// while a connection made before goes on working; an expired replacement
/// is refused and the last good certificate goes on being served.
#[tokio::test]
async fn rotation_reaches_new_connections_and_drops_none() {
    let pki = TestPki::new();
    let mut tls = pki.server_tls();
    tls.reload_interval_secs = 1;
    let listener = Arc::new(listener(&tls).await);
    let (client, server) = dial(&listener, &pki.client_tls()).await;
    let (mut old_client, mut old_server) = (client.unwrap(), server.unwrap());
    assert_eq!(served(&old_client), cert_der(&pki.server.cert));

    // Rotate as Kubernetes does: new contents under the same paths.
    let next = pki.issue_server("next");
    std::fs::copy(&next.cert, &pki.server.cert).unwrap();
    std::fs::copy(&next.key, &pki.server.key).unwrap();
    // Polled every second: allow 30 (a busy machine), ask every 100 ms.
    let mut rotated = false;
    for _ in 0..300 {
        let (client, _) = dial(&listener, &pki.client_tls()).await;
        if served(&client.unwrap()) == cert_der(&next.cert) {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new certificate was not served within 30 s");
    assert!(
        works(&mut old_client, &mut old_server).await,
        "the old connection still works"
    );

    // An expired replacement: refused, the rotated certificate stays.
    std::fs::copy(&pki.expired.cert, &pki.server.cert).unwrap();
    std::fs::copy(&pki.expired.key, &pki.server.key).unwrap();
    // Three polls' worth: had it been taken, it would be served by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (client, _) = dial(&listener, &pki.client_tls()).await;
    assert_eq!(served(&client.unwrap()), cert_der(&next.cert));
}

/// A long-lived client follows its files: after its certificate is
/// rotated, its next connection presents the new one.
#[tokio::test]
async fn a_loaded_client_presents_its_rotated_certificate() {
    let pki = TestPki::new();
    let listener = listener(&pki.mtls(true)).await;
    let mut cfg = pki.client_tls_with(&pki.client);
    cfg.reload_interval_secs = 1;
    let client = ClientTls::load(&cfg, ALPN_HTTP, "tls").unwrap();
    let identity = |server: Connection| server.peer.identity.expect("an identity").names.clone();
    let (_, server) = dial_with(&listener, &client).await;
    assert_eq!(identity(server.unwrap()), CLIENT_NAMES);

    let next = pki.issue("next-client", &["next.test"]);
    std::fs::copy(&next.cert, &pki.client.cert).unwrap();
    std::fs::copy(&next.key, &pki.client.key).unwrap();
    // Polled every second: allow 30 (a busy machine), ask every 100 ms.
    let mut rotated = false;
    for _ in 0..300 {
        let (_, server) = dial_with(&listener, &client).await;
        if identity(server.unwrap()) == ["next.test"] {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        rotated,
        "the new client certificate was not presented within 30 s"
    );

    let mut bad = cfg.clone();
    bad.client_auth.as_mut().unwrap().key_path = pki.server.key.clone();
    let err = ClientTls::load(&bad, ALPN_HTTP, "routers[0].client.tls").unwrap_err();
    assert_eq!(err.field, "routers[0].client.tls.clientAuth.keyPath");
}
