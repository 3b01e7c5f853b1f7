//! The DaemonSet mesh across hosts (issue 14): three nodes as Linux
//! network namespaces on a bridge (`net`), the Kubernetes API test server
//! and namerd in the root namespace, one linkerd-proxy and demo pods per
//! node (`cluster`), all configured from `deploy/kubernetes/` (`deploy`).
//! Clients run inside node A: curl and Python grpcio under `ip netns exec`,
//! the steady load of the fault suite on a thread that entered A's
//! namespace. `cargo test --test multinode` runs exactly these; they need
//! root (SKIPPED without it, a failure under `CI=true`).
//!
//! - `hops`: HTTP/1.1, HTTP/2 and gRPC from node A to a pod on node C, the
//!   hops proven by every proxy's metrics and by `Via`.
//! - `routing`: a canary shift with namerctl across nodes; a per-request
//!   override across both hops, stripped at an untrusting server.
//! - `failover`: a pod moving between nodes under load; a node's proxy
//!   killed.
//! - `ingress`: linkerd as the Kubernetes ingress controller: an outside
//!   client (the root namespace, HTTPS) reaches pods on nodes B and C by
//!   host and by path through node A's ingress router; Ingress changes
//!   take effect within a second; no rule is a 404 with `l5d-err`; no
//!   other `l5d-*` header leaves the edge.

#[path = "multinode/cluster.rs"]
mod cluster;
#[path = "multinode/deploy.rs"]
mod deploy;
#[path = "multinode/failover.rs"]
mod failover;
#[path = "multinode/hops.rs"]
mod hops;
#[path = "multinode/ingress.rs"]
mod ingress;
#[allow(
    dead_code,
    reason = "the fault suite's load generator, shared: not every test uses all of it"
)]
#[path = "faults/load.rs"]
mod load;
#[path = "multinode/net.rs"]
mod net;
#[path = "multinode/routing.rs"]
mod routing;

use std::time::Duration;

use net::NodeRuntime;

/// A response as `curl -i` prints it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    /// Parses `curl -sS -i` output (the last response's head and body).
    fn parse(out: &str) -> Answer {
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((out, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {out:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// The values of header `name`, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The proxies the request crossed, from the pod's echo of `Via`.
    fn via(&self) -> Vec<String> {
        self.all("x-echo-via")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().to_string())
            .collect()
    }
}

/// The fault suite's fixed-rate load ([`load::Load`]) sent from inside a
/// node: its tasks, and so its sockets, live on `rt`.
fn load_from(rt: &NodeRuntime, router: &str, host: &str, rate: u32) -> load::Load {
    let _inside = rt.handle.enter();
    load::Load::start(router, host, rate, 4)
}

/// Waits, polling every 10 ms for at most `bound`, until `done` holds.
async fn until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let since = std::time::Instant::now();
    while !done() {
        assert!(since.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
