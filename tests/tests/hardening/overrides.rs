//! The open proxy (issue 12): with `clearContext: false`, a client sending
//! `l5d-dtab: /svc/world => /$/inet/127.0.0.1/<namerd's admin port>`
//! reached namerd's admin, and a PUT through the proxy created a namespace.

use l5d_e2e::namerctl;

use super::setup::{Setup, status};

/// The three routers a client can send overrides to, each with a request
/// and the name the router gives it.
const PROBES: [(&str, bool, &str, &str); 3] = [
    ("http", false, "http://world/admin/ping", "/svc/world"),
    ("h2", true, "http://world/admin/ping", "/svc/world"),
    (
        "grpc",
        true,
        "http://world/l5d.demo.Greeter/SayHello",
        "/svc/l5d.demo.Greeter",
    ),
];

const HEADERS: [&str; 3] = ["l5d-dtab", "dtab-local", "l5d-ctx-dtab"];

/// curl arguments for one override header (gRPC's headers on `grpc`).
fn override_args(label: &str, header: &str, dentry: &str) -> Vec<String> {
    let mut args = vec!["-H".to_string(), format!("{header}: {dentry}")];
    if label == "grpc" {
        for a in ["-X", "POST", "-H", "content-type: application/grpc"] {
            args.push(a.to_string());
        }
    }
    args
}

async fn probe(
    s: &Setup,
    label: &str,
    h2: bool,
    url: &str,
    header: &str,
    dentry: &str,
) -> (u16, String) {
    let args = override_args(label, header, dentry);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    status(&s.proxy, label, h2, url, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_never_reach_an_address_the_client_chose() {
    let s = Setup::start().await;
    // The probe (namerd's admin) and a listener that counts every
    // connection: neither may be reached through a trusting server.
    for target in [s.namerd.admin.clone(), s.counter.addr.to_string()] {
        let (ip, port) = target.rsplit_once(':').unwrap();
        for header in HEADERS {
            for (label, h2, url, name) in PROBES {
                let dentry = format!("{name} => /$/inet/{ip}/{port}");
                let (code, err) = probe(&s, label, h2, url, header, &dentry).await;
                assert_eq!(code, 400, "{label} {header}: {dentry}: {err}");
                assert!(
                    err.starts_with(&format!("Refused+{header}+dentry+"))
                        && err.contains(&format!("%2Finet%2F{ip}%2F{port}")),
                    "{label} {header}: l5d-err names the header and dentry: {err}"
                );
            }
        }
    }
    assert_eq!(s.counter.connections(), 0, "an override reached its target");

    // Servers facing the outside ignore overrides: the dtab's own world.
    let to_counter = format!("/svc/world => /$/inet/{}", s.counter.addr).replace(':', "/");
    for header in HEADERS {
        for (label, h2) in [("http-edge", false), ("h2-edge", true)] {
            let (code, err) = probe(&s, label, h2, "http://world/", header, &to_counter).await;
            assert_eq!(code, 200, "{label} {header}: {err}");
        }
    }
    assert_eq!(
        s.counter.connections(),
        0,
        "an edge server read an override"
    );

    // The probe is real: a server that allows addresses lets it through.
    let (code, err) = probe(
        &s,
        "http-open",
        false,
        "http://world/",
        "l5d-dtab",
        &to_counter,
    )
    .await;
    assert_eq!((code, s.counter.connections()), (200, 1), "{err}");
    let (ip, port) = s.namerd.admin.rsplit_once(':').unwrap();
    let to_admin = format!("/svc/world => /$/inet/{ip}/{port}");
    let (code, err) = probe(
        &s,
        "http-open",
        false,
        "http://world/admin/ping",
        "l5d-dtab",
        &to_admin,
    )
    .await;
    assert_eq!(
        code, 200,
        "allowOverrideToAddresses: true reaches namerd's admin: {err}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_through_the_proxy_creates_no_namespace() {
    let s = Setup::start().await;
    let (ip, port) = s.namerd.http.rsplit_once(':').unwrap();
    let dentry = format!("/svc/namerd => /$/inet/{ip}/{port}");
    let put = |ns: &str| {
        vec![
            "-X".to_string(),
            "PUT".to_string(),
            "-H".to_string(),
            "content-type: application/dtab".to_string(),
            "--data-binary".to_string(),
            "/a => /b".to_string(),
            "-H".to_string(),
            format!("l5d-dtab: {dentry}"),
            format!("http://namerd/api/1/dtabs/{ns}"),
        ]
    };
    for label in ["http", "http-edge"] {
        let args = put("evil");
        let (url, args) = args.split_last().unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = status(&s.proxy, label, false, url, &args).await;
        // The trusting server refuses the override; the edge ignores it,
        // and `namerd` is no service of its dtab.
        let want = if label == "http" { 400 } else { 502 };
        assert_eq!(code, want, "{label}: {err}");
    }
    let (code, list, err) = namerctl(&s.namerd.base_url(), &["dtab", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!list.contains("evil"), "a namespace was created: {list}");

    // Where addresses are allowed, the same PUT writes (the issue's
    // finding, kept reachable only by configuration).
    let args = put("allowed");
    let (url, args) = args.split_last().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = status(&s.proxy, "http-open", false, url, &args).await;
    assert!((200..300).contains(&code), "{code} {err}");
    let (_, list, _) = namerctl(&s.namerd.base_url(), &["dtab", "list"]).await;
    assert!(list.contains("allowed") && !list.contains("evil"), "{list}");
    s.stop().await;
}
