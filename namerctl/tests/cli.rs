//! The `namerctl` binary against a scripted HTTP server: what it sends
//! (method, path, `If-Match`, `Content-Type`, body), how it reports
//! namerd's answers and exit codes, and the transport errors. The real
//! namerd is exercised in `e2e.rs`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[path = "support/run.rs"]
mod run;

use run::{namerctl, stderr, stdout};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    if_match: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    body: String,
}

/// A scripted answer: status, optional ETag, body.
type Answer = (u16, Option<&'static str>, &'static str);

#[derive(Debug)]
struct Fake {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Serves the answers in order, one per request, recording the requests.
async fn fake(answers: Vec<Answer>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let recorded = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, answers) = (recorded.clone(), answers.clone());
            let service = service_fn(move |req: Request<Incoming>| {
                let (seen, answers) = (seen.clone(), answers.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_string())
                    };
                    let mut record = Seen {
                        method: req.method().to_string(),
                        path: req.uri().path().to_string(),
                        if_match: header("if-match"),
                        content_type: header("content-type"),
                        accept: header("accept"),
                        body: String::new(),
                    };
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    record.body = String::from_utf8(body.to_vec()).unwrap();
                    seen.lock().unwrap().push(record);
                    let (status, etag, body) = answers
                        .lock()
                        .unwrap()
                        .pop_front()
                        .expect("a scripted answer");
                    let mut response = Response::builder().status(status);
                    if let Some(etag) = etag {
                        response = response.header("etag", etag);
                    }
                    Ok::<_, Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
                }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Fake { base_url, seen }
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn update_sends_the_version_from_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("internal.dtab");
    std::fs::write(&text, "# version AAAAAAAAAAE=\n/svc  => /host ;\n").unwrap();
    let json = dir.path().join("internal.json");
    std::fs::write(
        &json,
        r#"{"version": "AAAAAAAAAAI=", "dtab": [{"prefix": "/svc", "dst": "/host"}]}"#,
    )
    .unwrap();
    let fake = fake(vec![(204, None, ""); 3]).await;
    let t = text.to_str().unwrap();
    let j = json.to_str().unwrap();

    for args in [
        vec!["dtab", "update", "internal", t],
        vec!["dtab", "up", "internal", j],
        vec!["dtab", "update", "internal", t, "--version", "Zm9v"],
    ] {
        let out = namerctl(&fake.base_url, dir.path(), &args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "Updated internal\n");
    }

    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.method == "PUT"));
    assert!(seen.iter().all(|s| s.path == "/api/1/dtabs/internal"));
    let if_match: Vec<_> = seen.iter().map(|s| s.if_match.as_deref()).collect();
    assert_eq!(
        if_match,
        [Some("AAAAAAAAAAE="), Some("AAAAAAAAAAI="), Some("Zm9v")]
    );
    assert_eq!(seen[0].content_type.as_deref(), Some("application/dtab"));
    assert_eq!(seen[0].body, "# version AAAAAAAAAAE=\n/svc  => /host ;\n");
    assert_eq!(seen[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[1].body, r#"[{"prefix":"/svc","dst":"/host"}]"#);
}

#[tokio::test]
async fn flag_overriding_the_file_version_warns() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d");
    std::fs::write(&file, "# version AAAAAAAAAAE=\n/a=>/b;\n").unwrap();
    let fake = fake(vec![(204, None, "")]).await;
    let args = [
        "dtab",
        "update",
        "internal",
        file.to_str().unwrap(),
        "--version",
        "AAAAAAAAAAI=",
    ];
    let out = namerctl(&fake.base_url, dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--version AAAAAAAAAAI= overrides version AAAAAAAAAAE="),
        "{}",
        stderr(&out)
    );
    assert_eq!(fake.seen()[0].if_match.as_deref(), Some("AAAAAAAAAAI="));
}

#[tokio::test]
async fn conflicts_exit_3_and_name_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d");
    std::fs::write(&file, "/a=>/b;\n").unwrap();
    let f = file.to_str().unwrap();
    // A 412 without an ETag makes namerctl look the current version up.
    let fake = fake(vec![
        (412, None, ""),
        (200, Some("AAAAAAAAAAM="), "[]"),
        (412, Some("AAAAAAAAAAQ="), ""),
        (409, None, ""),
        (200, Some("AAAAAAAAAAU="), "[]"),
    ])
    .await;

    let out = namerctl(
        &fake.base_url,
        dir.path(),
        &["dtab", "update", "internal", f, "--version", "AAAAAAAAAAE="],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "Error: version conflict: dtab internal has changed since version AAAAAAAAAAE=; \
         the current version is AAAAAAAAAAM=\n"
    );

    let out = namerctl(
        &fake.base_url,
        dir.path(),
        &["dtab", "update", "internal", f, "--version", "AAAAAAAAAAE="],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("the current version is AAAAAAAAAAQ="));

    let out = namerctl(
        &fake.base_url,
        dir.path(),
        &["dtab", "create", "internal", f],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "Error: dtab internal already exists (current version AAAAAAAAAAU=)\n"
    );
    let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["PUT", "GET", "PUT", "POST", "GET"]);
}

#[tokio::test]
async fn namerd_errors_are_reported_once_without_usage() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d");
    std::fs::write(&file, "/a=>;\n").unwrap();
    let fake = fake(vec![
        (
            400,
            None,
            "Invalid dtab: expected a name tree at 4\nmore detail\n",
        ),
        (404, None, ""),
        (500, None, ""),
    ])
    .await;
    let f = file.to_str().unwrap();

    let out = namerctl(&fake.base_url, dir.path(), &["dtab", "create", "x", f]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: unexpected response: 400 Bad Request: Invalid dtab: expected a name tree at 4\nmore detail\n"
    );
    let out = namerctl(&fake.base_url, dir.path(), &["dtab", "rm", "x"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: resource was not found by ID or name\n"
    );
    let out = namerctl(&fake.base_url, dir.path(), &["dtab", "ls"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: unexpected response: 500 Internal Server Error\n"
    );
}

#[tokio::test]
async fn get_formats_and_percent_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let dtab =
        r#"[{"prefix":"/svc","dst":"/host"},{"prefix":"/host/world","dst":"/srv/world-v1"}]"#;
    let fake = fake(vec![
        (200, Some("AAAAAAAAAAE="), dtab),
        (200, Some("AAAAAAAAAAE="), dtab),
        (200, Some("AAAAAAAAAAE="), dtab),
        (200, None, "[\"default\",\"internal\"]\n"),
        (200, None, "[\"default\",\"internal\"]\n"),
        (410, None, ""),
    ])
    .await;
    let run = |args: &'static [&'static str]| namerctl(&fake.base_url, dir.path(), args);

    let out = run(&["dtab", "get", "internal"]).await;
    assert_eq!(
        stdout(&out),
        "# version AAAAAAAAAAE=\n/svc         => /host ;\n/host/world  => /srv/world-v1 ;\n"
    );
    let out = run(&["dtab", "cat", "internal", "--pretty=false"]).await;
    assert_eq!(stdout(&out), "/svc=>/host;/host/world=>/srv/world-v1;\n");
    let out = run(&["dtab", "--json", "get", "internal"]).await;
    assert_eq!(
        stdout(&out),
        format!("{{\"version\":\"AAAAAAAAAAE=\",\"dtab\":{dtab}}}\n")
    );
    let out = run(&["dtab", "list"]).await;
    assert_eq!(stdout(&out), "default\ninternal\n");
    let out = run(&["dtab", "ls", "--json"]).await;
    assert_eq!(stdout(&out), "[\"default\",\"internal\"]\n");
    let out = run(&["dtab", "rollback", "internal", "AB+/cw=="]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("version AB+/cw== of dtab internal is a deletion"));

    let seen = fake.seen();
    assert!(
        seen[..3]
            .iter()
            .all(|s| s.accept.as_deref() == Some("application/json"))
    );
    assert_eq!(seen[3].path, "/api/1/dtabs");
    assert_eq!(
        seen[5].path,
        "/api/1/dtabs/internal/history/AB%2B%2Fcw%3D%3D"
    );
}

#[tokio::test]
async fn update_without_a_version_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d");
    std::fs::write(&file, "/a=>/b;\n").unwrap();
    let fake = fake(vec![(204, None, "")]).await;
    let f = file.to_str().unwrap();

    let out = namerctl(&fake.base_url, dir.path(), &["dtab", "update", "x", f]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to update dtab x"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    assert!(fake.seen().is_empty());

    let out = namerctl(
        &fake.base_url,
        dir.path(),
        &["dtab", "update", "x", f, "--force"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fake.seen()[0].if_match, None);
}

#[tokio::test]
async fn transport_errors() {
    let dir = tempfile::tempdir().unwrap();

    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = namerctl(&closed, dir.path(), &["dtab", "ls"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("Error: cannot reach namerd at {closed}: ")),
        "{}",
        stderr(&out)
    );

    // A listener that never answers: the kernel accepts the connection, no
    // response ever comes, so the outcome does not depend on timing.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let out = namerctl(&silent_url, dir.path(), &["--timeout", "1", "dtab", "ls"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("Error: namerd at {silent_url} did not answer within 1s\n")
    );
    drop(silent);

    let out = namerctl("", dir.path(), &["--base-url", "", "dtab", "ls"]).await;
    assert_eq!(stderr(&out), "Error: empty base URL\n");
    // Nothing configured: namerd's default address, which -v names. (Whether
    // something answers there depends on what else runs on this machine.)
    let out = namerctl("", dir.path(), &["-v", "--timeout", "1", "dtab", "ls"]).await;
    assert_eq!(
        stderr(&out).lines().next(),
        Some(
            "namerd at http://127.0.0.1:4180 (the default: no --base-url, NAMERCTL_BASE_URL \
             or base-url in a .namerctl file)"
        ),
        "{}",
        stderr(&out)
    );
    let out = namerctl("namerd:4180", dir.path(), &["dtab", "ls"]).await;
    assert_eq!(stderr(&out), "Error: invalid base URL: namerd:4180\n");
    // https needs the CA to verify namerd with (tests/tls.rs has the rest).
    let out = namerctl("https://namerd:4180", dir.path(), &["dtab", "ls"]).await;
    assert!(stderr(&out).starts_with("Error: --ca-cert: an https:// namerd needs"));
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = namerctl("http://127.0.0.1:1", dir.path(), &["dtab", "get"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("get requires a name argument"));
}
