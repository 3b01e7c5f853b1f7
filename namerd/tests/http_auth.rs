//! Who may read and write through the dtab HTTP API, rule by rule, with
//! the router called in-process: the caller is the `Peer` a listener would
//! put into the request (its address, and a verified client certificate's
//! names), or axum's connection info, which namerd's listener gives today.
//! The access rules come from configuration text, as in a file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use l5d_runtime::{ClientIdentity, Peer};
use namerd::api::{self, ApiState};
use namerd::auth::{Access, TOKEN_RELOAD_INTERVAL, hashed};
use namerd::config::NamerdConfig;
use namerd::interpreter::{Interpreter, InterpreterOptions};
use namerd::namer::inet::InetResolver;
use namerd::store::memory::MemoryStore;
use namerd::store::{DtabStore, Namespace};
use tower::ServiceExt as _;

const DEPLOYER: &str = "tok-deployer-3f9a1c";
const READER: &str = "tok-reader-77b2e0";
const REMOTE: &str = "10.0.0.7:5000";
const LOCAL: &str = "127.0.0.1:5000";
const OPS_SAN: &str = "spiffe://example.org/ns/ops/sa/deployer";

/// The `io.l5d.httpController` of the tests that configure `auth` (the
/// router is called in-process, so the TLS files are never read).
fn controller(reads: &str, token_file: &Path) -> String {
    format!(
        "kind: io.l5d.httpController\n  ip: 0.0.0.0\n  \
         tls: {{certPath: /tls.crt, keyPath: /tls.key, caCertPath: /ca.crt}}\n  auth:\n    \
         tokenFile: {}\n    clientCertificates: {{\"{OPS_SAN}\": ops}}\n    \
         reads: {reads}\n    permissions:\n      \
         internal: {{write: [deployer], read: [reader]}}\n      \"*\": {{write: [ops]}}\n",
        token_file.display()
    )
}

fn write_tokens(path: &Path, entries: &[(&str, &str)]) {
    let text: String = entries
        .iter()
        .map(|(who, token)| format!("{who}: {}\n", hashed(token)))
        .collect();
    // Replaced whole, as a Kubernetes Secret update does.
    let next = path.with_extension("new");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

struct Api {
    router: Router,
    store: Arc<dyn DtabStore>,
    _dir: tempfile::TempDir,
    tokens: std::path::PathBuf,
}

/// The router of a namerd whose `io.l5d.httpController` is `controller`
/// (given the token file's path), with `internal` holding `/a => /b`.
async fn api(controller: impl FnOnce(&Path) -> String) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    write_tokens(&tokens, &[("deployer", DEPLOYER), ("reader", READER)]);
    let text = format!(
        "storage: {{kind: io.l5d.inMemory}}\ninterfaces:\n- {}",
        controller(&tokens)
    );
    let config = NamerdConfig::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let http = config.http_controller().unwrap();
    let access = Access::new(
        http.auth.as_ref(),
        http.allow_unauthenticated_writes,
        "interfaces[0].auth",
    )
    .unwrap();
    let namespaces = BTreeMap::from([(
        Namespace::new("internal").unwrap(),
        l5d_dtab::Dtab::read("/a => /b").unwrap(),
    )]);
    let store: Arc<dyn DtabStore> = Arc::new(MemoryStore::new(namespaces));
    let interpreter = Interpreter::new(
        store.clone(),
        Vec::new(),
        Arc::new(InetResolver::new()),
        InterpreterOptions::default(),
    );
    let state = ApiState {
        store: store.clone(),
        interpreter,
        max_body_bytes: 1024 * 1024,
        shutdown: tokio::sync::watch::channel(false).1,
        access: Arc::new(access),
    };
    Api {
        router: api::router(state),
        store,
        _dir: dir,
        tokens,
    }
}

/// A request as it reaches the router.
struct Call<'a> {
    method: Method,
    path: &'a str,
    from: &'a str,
    token: Option<&'a str>,
    cert: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a str,
    /// Connection info only, as `into_make_service_with_connect_info`
    /// gives, instead of a `Peer`.
    connect_info: bool,
}

fn call<'a>(method: Method, path: &'a str) -> Call<'a> {
    Call {
        method,
        path,
        from: REMOTE,
        token: None,
        cert: None,
        headers: Vec::new(),
        body: "",
        connect_info: false,
    }
}

fn write(path: &str) -> Call<'_> {
    Call {
        body: "/x => /y",
        headers: vec![("content-type", "application/dtab")],
        ..call(Method::PUT, path)
    }
}

impl<'a> Call<'a> {
    fn token(self, token: &'a str) -> Self {
        Call {
            token: Some(token),
            ..self
        }
    }
    fn from(self, from: &'a str) -> Self {
        Call { from, ..self }
    }
    fn cert(self, san: &'a str) -> Self {
        Call {
            cert: Some(san),
            ..self
        }
    }
    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn connect_info(self) -> Self {
        Call {
            connect_info: true,
            ..self
        }
    }
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

impl Api {
    async fn send(&self, call: Call<'_>) -> Reply {
        let mut req = Request::builder().method(call.method).uri(call.path);
        for (name, value) in &call.headers {
            req = req.header(*name, *value);
        }
        if let Some(token) = call.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let mut req = req.body(Body::from(call.body.to_owned())).unwrap();
        let addr: SocketAddr = call.from.parse().unwrap();
        if call.connect_info {
            req.extensions_mut().insert(ConnectInfo(addr));
        } else {
            let mut peer = Peer::plain(addr, "0.0.0.0:4180".parse().unwrap());
            peer.identity = call.cert.map(|san| {
                Arc::new(ClientIdentity {
                    names: vec!["other.example.org".into(), san.into()],
                })
            });
            req.extensions_mut().insert(peer);
        }
        let rsp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = rsp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            challenge: parts
                .headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string()),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn status(&self, call: Call<'_>) -> StatusCode {
        self.send(call).await.status
    }

    /// The author of the latest version of `internal`.
    async fn last_author(&self) -> String {
        let history = self
            .store
            .history(&Namespace::new("internal").unwrap())
            .await
            .unwrap();
        history.last().unwrap().author.clone().unwrap()
    }
}

#[tokio::test]
async fn writes_need_a_token_with_write_permission() {
    let api = api(|t| controller("open", t)).await;
    let ns = "/api/1/dtabs/internal";

    let r = api.send(write(ns)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no token: {}", r.body);
    assert_eq!(r.challenge.as_deref(), Some(r#"Bearer realm="namerd""#));
    assert!(r.body.starts_with("authentication required"), "{}", r.body);

    let r = api.send(write(ns).token("guessed")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.challenge.as_deref(),
        Some(r#"Bearer realm="namerd", error="invalid_token""#)
    );
    assert_eq!(r.body, "the bearer token is not valid");

    let r = api.send(write(ns).token(READER)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.challenge, None);
    assert_eq!(r.body, "reader may not write dtab namespace internal");

    let r = api
        .send(write("/api/1/dtabs/external").token(DEPLOYER))
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::FORBIDDEN,
            "deployer may not write dtab namespace external"
        )
    );

    let r = api
        .send(write(ns).token(DEPLOYER).header("l5d-author", "alice"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        api.last_author().await,
        "deployer (10.0.0.7:5000, l5d-author: alice)"
    );

    // Loopback is no exemption once auth is configured.
    assert_eq!(
        api.status(write(ns).from(LOCAL)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_mutating_route_is_guarded_and_checked_before_the_body() {
    let api = api(|t| controller("open", t)).await;
    let ns = "/api/1/dtabs/internal";
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        assert_eq!(
            api.status(Call {
                body: "/x => /y",
                ..call(method.clone(), ns)
            })
            .await,
            StatusCode::UNAUTHORIZED,
            "{method}"
        );
    }
    // A body declared far over maxBodyBytes: refused for want of a token
    // (401), not for its size (413), so it is never read.
    let huge = call(Method::POST, "/api/1/dtabs/big").header("content-length", "100000000");
    assert_eq!(api.status(huge).await, StatusCode::UNAUTHORIZED);
    // A rollback is a compare-and-set PUT of an old version: same rule.
    let r = api
        .send(write(ns).header("if-match", "AAAAAAAAAAE=").token(DEPLOYER))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        api.status(
            call(Method::DELETE, ns)
                .token(DEPLOYER)
                .header("l5d-author", "x")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // The generic delegator's POST only reads.
    let delegate = Call {
        body: r#"{"dtab": "/a => /b", "path": "/a"}"#,
        headers: vec![("content-type", "application/json")],
        ..call(Method::POST, "/api/1/delegate")
    };
    assert_eq!(api.status(delegate).await, StatusCode::OK);
}

#[tokio::test]
async fn client_certificates_are_identities() {
    let api = api(|t| controller("open", t)).await;
    let r = api.send(write("/api/1/dtabs/external").cert(OPS_SAN)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let history = api
        .store
        .history(&Namespace::new("external").unwrap())
        .await
        .unwrap();
    assert_eq!(history[0].author.as_deref(), Some("ops (10.0.0.7:5000)"));

    let r = api
        .send(write("/api/1/dtabs/internal").cert("spiffe://example.org/intruder"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains(
            "names (other.example.org, spiffe://example.org/intruder) map to no identity"
        ),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn reads_are_open_or_restricted() {
    let open = api(|t| controller("open", t)).await;
    let restricted = api(|t| controller("restricted", t)).await;
    let get = || call(Method::GET, "/api/1/dtabs/internal");
    let list = || call(Method::GET, "/api/1/dtabs");
    let bind = || call(Method::GET, "/api/1/bind/internal?path=/a");
    assert_eq!(open.status(get()).await, StatusCode::OK);
    assert_eq!(open.status(list()).await, StatusCode::OK);
    // A bad token is refused even where none is needed.
    assert_eq!(
        open.status(get().token("guessed")).await,
        StatusCode::UNAUTHORIZED
    );

    let r = restricted.send(get()).await;
    assert_eq!(
        (r.status, r.challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some(r#"Bearer realm="namerd""#))
    );
    assert_eq!(restricted.status(get().token(READER)).await, StatusCode::OK);
    assert_eq!(
        restricted.status(get().token(DEPLOYER)).await,
        StatusCode::OK
    );
    assert_eq!(
        restricted.status(bind().token(READER)).await,
        StatusCode::OK,
        "the interpreter routes read too"
    );
    assert_eq!(restricted.status(bind()).await, StatusCode::UNAUTHORIZED);
    // Routes naming no namespace need the permission on `*`.
    let r = restricted.send(list().token(READER)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        restricted.status(list().cert(OPS_SAN)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_auth_writes_come_from_loopback_only() {
    // The default: nothing configured, a loopback listener.
    let local = api(|_| "kind: io.l5d.httpController".into()).await;
    let ns = "/api/1/dtabs/internal";
    // What the original Go namerctl sends: no token, no l5d-author.
    let go_namerctl = || Call {
        body: r#"[{"prefix":"/x","dst":"/y"}]"#,
        headers: vec![("content-type", "application/json")],
        ..call(Method::PUT, "/api/1/dtabs/internal")
    };
    assert_eq!(
        local.status(go_namerctl().from(LOCAL)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(local.last_author().await, "127.0.0.1:5000");
    // A token sent anyway is ignored, and a declared author is a note.
    let r = local
        .send(
            write(ns)
                .from("[::1]:5000")
                .token("anything")
                .header("l5d-author", "alice"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(local.last_author().await, "[::1]:5000 (l5d-author: alice)");
    // Connection info alone (namerd's listener until it sets `Peer`).
    assert_eq!(
        local.status(write(ns).from(LOCAL).connect_info()).await,
        StatusCode::NO_CONTENT
    );
    let r = local.send(write(ns).connect_info()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.starts_with("writes are accepted only from loopback"));
    assert_eq!(local.status(go_namerctl()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        local.status(call(Method::GET, ns)).await,
        StatusCode::OK,
        "reads stay open"
    );

    // The operator's explicit word for a trusted network.
    let trusted = api(|_| {
        "kind: io.l5d.httpController\n  ip: 0.0.0.0\n  allowUnauthenticatedWrites: true".into()
    })
    .await;
    assert_eq!(trusted.status(write(ns)).await, StatusCode::NO_CONTENT);
    assert_eq!(trusted.last_author().await, "10.0.0.7:5000");
}

/// Rotation and revocation through the token file, on paused time: the
/// file is re-read every `TOKEN_RELOAD_INTERVAL`; a version that does not
/// parse keeps the last good one.
#[tokio::test(start_paused = true)]
async fn the_token_file_is_reloaded_when_it_changes() {
    let api = api(|t| controller("open", t)).await;
    let ns = "/api/1/dtabs/internal";
    assert_eq!(
        api.status(write(ns).token(DEPLOYER)).await,
        StatusCode::NO_CONTENT
    );
    let settled = || tokio::time::sleep(TOKEN_RELOAD_INTERVAL * 2);

    // Rotation: a new token for deployer, the old one revoked.
    write_tokens(&api.tokens, &[("deployer", "tok-deployer-next")]);
    settled().await;
    assert_eq!(
        api.status(write(ns).token("tok-deployer-next")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.status(write(ns).token(DEPLOYER)).await,
        StatusCode::UNAUTHORIZED
    );

    // A broken file (a plaintext token where a hash belongs) changes
    // nothing: the last good file stays in force.
    std::fs::write(&api.tokens, "deployer: tok-deployer-next\n").unwrap();
    settled().await;
    assert_eq!(
        api.status(write(ns).token("tok-deployer-next")).await,
        StatusCode::NO_CONTENT
    );

    // Revoking everyone.
    std::fs::write(&api.tokens, "{}\n").unwrap();
    settled().await;
    assert_eq!(
        api.status(write(ns).token("tok-deployer-next")).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A dry run (`POST /api/1/dtabs/{ns}/dry-run`) stores nothing, so it is a
/// read: a reader may run it, and without auth so may a remote caller,
/// who may not write; a POST to a namespace is still a write.
#[tokio::test]
async fn a_dry_run_is_a_read() {
    let dry_run = |path| Call {
        body: "/x => /y",
        headers: vec![("content-type", "application/dtab")],
        ..call(Method::POST, path)
    };
    let restricted = api(|t| controller("restricted", t)).await;
    let ns = "/api/1/dtabs/internal/dry-run";
    let r = restricted.send(dry_run(ns).token(READER)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        restricted.status(dry_run(ns)).await,
        StatusCode::UNAUTHORIZED
    );
    // Creating a namespace called `dry-run` is a write.
    let r = restricted
        .send(dry_run("/api/1/dtabs/dry-run").token(READER))
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::FORBIDDEN,
            "reader may not write dtab namespace dry-run"
        )
    );

    let local = api(|_| "kind: io.l5d.httpController".into()).await;
    let r = local.send(dry_run(ns)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        local.status(write("/api/1/dtabs/internal")).await,
        StatusCode::FORBIDDEN
    );
}
