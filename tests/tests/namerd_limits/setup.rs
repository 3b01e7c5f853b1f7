//! What the probes share: namerd's configuration, gRPC clients from chosen
//! loopback addresses, and readings of namerd's memory and metrics.

use std::net::IpAddr;

use l5d_e2e::Namerd;
use l5d_proto::mesh as pb;
use tonic::transport::{Channel, Endpoint};

pub(crate) type Interp = pb::interpreter_client::InterpreterClient<Channel>;

/// namerd on port 0 with an in-memory dtab that binds every `/svc/<name>`,
/// bindings nobody watches stopped after 2 s (so that a probe can see
/// memory come back without waiting the default 600 s), and `extra` lines
/// in the `interpreter` block.
pub(crate) fn config(extra: &str) -> String {
    format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.inMemory, namespaces: {{internal: \"/svc => /$/inet/127.0.0.1/1\"}}}}\n\
         interpreter:\n  idleTtlSecs: 2\n{extra}\
         interfaces:\n\
         - {{kind: io.l5d.httpController, port: 0}}\n\
         - {{kind: io.l5d.mesh, port: 0}}\n"
    )
}

/// A gRPC channel to `mesh` whose connection comes from `from` (any
/// 127.0.0.0/8 address is loopback on Linux), so that two clients on one
/// machine are two clients to namerd.
pub(crate) async fn channel(mesh: &str, from: IpAddr) -> Channel {
    Endpoint::from_shared(format!("http://{mesh}"))
        .unwrap()
        .local_address(Some(from))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connects to namerd's mesh port from {from}: {e}"))
}

pub(crate) fn path(s: &str) -> pb::Path {
    pb::Path {
        elems: s
            .split('/')
            .filter(|l| !l.is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect(),
    }
}

/// A bind of `name` in the namespace `internal`, without a local dtab.
pub(crate) fn bind_req(name: &str) -> pb::BindReq {
    pb::BindReq {
        root: Some(path("/internal")),
        name: Some(path(name)),
        dtab: None,
    }
}

/// The resident set of a process, in KiB (Linux).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

pub(crate) fn mib(kib: u64) -> u64 {
    kib / 1024
}

/// A value of namerd's Prometheus page.
pub(crate) async fn metric(namerd: &Namerd, name: &str) -> Option<f64> {
    let (status, body, _) =
        l5d_e2e::curl(&[&format!("http://{}/admin/metrics/prometheus", namerd.admin)]).await;
    assert_eq!(status, 0);
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}
