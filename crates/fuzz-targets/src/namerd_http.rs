//! namerd's HTTP API (`namerd::api::router`) on an in-memory store, one
//! arbitrary request at a time, as a loopback client (whose writes are
//! allowed): dtab bodies in every content type, namespace names, If-Match
//! values, query strings of the interpreter routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use l5d_dtab::Dtab;
use l5d_runtime::Peer;
use namerd::api::{self, ApiState};
use namerd::auth::Access;
use namerd::interpreter::{Interpreter, InterpreterOptions};
use namerd::namer::inet::{HostResolver, InetOptions, InetResolver};
use namerd::store::memory::MemoryStore;
use namerd::store::{DtabStore, Namespace};
use tower::ServiceExt as _;

use crate::head;

/// Longer than any answer takes; `?watch=true` streams never end by
/// themselves, and on the paused clock this ends them as soon as nothing
/// else is left to run.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// One request (see [`head::parse`] for the text form) against a fresh
/// namerd holding `default` = `/svc => /#/io.l5d.fs`.
pub fn namerd_http(data: &[u8]) {
    let Some(head) = head::parse(data) else {
        return;
    };
    let mut req = Request::from_parts(head.parts, Body::from(head.body.to_vec()));
    let peer = Peer::plain(
        "127.0.0.1:40000".parse().expect("an address"),
        "127.0.0.1:4180".parse().expect("an address"),
    );
    req.extensions_mut().insert(peer);
    // A runtime per input: tasks a request starts (bindings, watches) end
    // with it, so no input changes what the next one sees.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let router = api::router(state());
        let answer = async {
            let rsp = router.oneshot(req).await.expect("axum routers never fail");
            let status = rsp.status();
            let body = rsp.into_body().collect().await;
            assert!(
                !status.is_server_error() || status == http::StatusCode::SERVICE_UNAVAILABLE,
                "{status}: {body:?}"
            );
        };
        let _ = tokio::time::timeout(ANSWER_TIMEOUT, answer).await;
    });
}

fn state() -> ApiState {
    let namespaces = BTreeMap::from([(
        Namespace::new("default").expect("a namespace"),
        Dtab::read("/svc => /#/io.l5d.fs").expect("a dtab"),
    )]);
    let store: Arc<dyn DtabStore> = Arc::new(MemoryStore::new(namespaces));
    // Host names fail at once: a fuzzer must not send DNS queries.
    let resolver = HostResolver::from_fn(|host| async move {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, host))
    });
    let inet = InetResolver::with_options(InetOptions {
        resolver,
        ..InetOptions::default()
    });
    let interpreter = Interpreter::new(
        store.clone(),
        Vec::new(),
        Arc::new(inet),
        InterpreterOptions::default(),
    );
    ApiState {
        store,
        interpreter,
        max_body_bytes: 64 * 1024,
        shutdown: tokio::sync::watch::channel(false).1,
        access: Arc::new(Access::new(None, false, "fuzz").expect("open access")),
    }
}
