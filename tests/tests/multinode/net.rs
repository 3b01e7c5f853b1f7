//! The multi-node test's network: each "node" is a Linux network namespace
//! with one veth into a bridge in the root namespace, on a private /24
//! (`10.244.<k>.0/24`) that this run chose and checked free. The bridge
//! holds `.1`, so processes in the root namespace (namerd, the test itself)
//! are reachable from every node; nodes get `.11`, `.12`, ... and no
//! default route, so nothing beyond the addresses made here is reachable
//! from inside them.
//!
//! Everything is named after the test process' pid and a per-process
//! counter (`l5d-<pid>-<n>-<node>` namespaces, `l5d<pid>b<n>` bridges,
//! `l5d<pid>v<n><node>` veths; interface names have 15 bytes at most), so
//! parallel runs never share a name. [`Net`] removes all of it on drop,
//! panics included; a run killed before it could is cleaned up by the
//! next one, which first removes whatever carries a dead pid.
//!
//! It needs root (`ip netns`); without it [`Net::create`] says `SKIPPED`
//! outside CI and fails under `CI=true`.

use std::net::Ipv4Addr;
use std::os::fd::AsFd as _;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::oneshot;

/// Names this harness makes start with this (namespaces `l5d-`, links `l5d`
/// followed by the pid).
const PREFIX: &str = "l5d";

/// How many networks this process made so far (part of every name).
static RUNS: AtomicU32 = AtomicU32::new(0);

/// The nodes' network and what it takes to remove it.
#[derive(Debug)]
pub(crate) struct Net {
    bridge: String,
    /// The bridge's address: the root namespace as the nodes reach it.
    pub(crate) gateway: Ipv4Addr,
    pub(crate) nodes: Vec<Node>,
}

/// One node: a network namespace with one address.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The Kubernetes node name (`node-a`).
    pub(crate) name: String,
    /// The network namespace (`l5d-<pid>-<n>-a`).
    pub(crate) netns: String,
    pub(crate) ip: Ipv4Addr,
    /// The root namespace's end of the node's veth pair.
    veth: String,
}

// === impl Net ===

impl Net {
    /// Nodes named `names` (`node-a`, ...) on a new bridge. `None` when
    /// this is not root (after [`l5d_e2e::skip_or_fail`]).
    pub(crate) fn create(names: &[&str]) -> Option<Net> {
        if !is_root() {
            l5d_e2e::skip_or_fail("the multi-node test needs root, for ip netns");
            return None;
        }
        remove_leftovers();
        let pid = std::process::id();
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let bridge = format!("{PREFIX}{pid}b{run}");
        // The lock makes choosing a free /24 and taking it one step for
        // every run on this machine, in this process or another.
        let lock = std::fs::File::create(std::env::temp_dir().join("l5d-multinode-net.lock"))
            .expect("the lock file");
        lock.lock().expect("the lock");
        let subnet = free_subnet(pid, run);
        let gateway = Ipv4Addr::new(10, 244, subnet, 1);
        let mut net = Net {
            bridge: bridge.clone(),
            gateway,
            nodes: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
        drop(lock);
        ip(&["link", "set", &bridge, "up"]);
        for (i, name) in names.iter().enumerate() {
            let letter = name.rsplit('-').next().expect("a node name");
            let node = Node {
                name: name.to_string(),
                netns: format!("{PREFIX}-{pid}-{run}-{letter}"),
                ip: Ipv4Addr::new(10, 244, subnet, 11 + i as u8),
                veth: format!("{PREFIX}{pid}v{run}{letter}"),
            };
            // Pushed first, so that drop removes it however far this got.
            net.nodes.push(node.clone());
            node.create(&bridge, &format!("{PREFIX}{pid}p{run}{letter}"));
        }
        Some(net)
    }

    /// The node named `name`.
    pub(crate) fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for node in &self.nodes {
            quiet_ip(&["netns", "del", &node.netns]);
            quiet_ip(&["link", "del", &node.veth]);
        }
        quiet_ip(&["link", "del", &self.bridge]);
    }
}

// === impl Node ===

impl Node {
    fn create(&self, bridge: &str, peer: &str) {
        let ns = self.netns.as_str();
        ip(&["netns", "add", ns]);
        ip(&[
            "link", "add", &self.veth, "type", "veth", "peer", "name", peer,
        ]);
        ip(&["link", "set", &self.veth, "master", bridge]);
        ip(&["link", "set", &self.veth, "up"]);
        ip(&["link", "set", peer, "netns", ns]);
        ip(&["-n", ns, "link", "set", peer, "name", "eth0"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", self.ip),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    /// The wrapper that runs a command inside this node.
    pub(crate) fn exec(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.netns]
            .map(String::from)
            .to_vec()
    }

    /// `curl -sS --max-time 10 ARGS` run inside this node with `env` (e.g.
    /// `http_proxy`); (exit status, stdout, stderr).
    pub(crate) async fn curl_env(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> (i32, String, String) {
        let out = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "curl",
                "-sS",
                "--max-time",
                "10",
            ])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .await
            .expect("ip netns exec curl runs");
        l5d_e2e::outcome(&out)
    }

    /// A tokio runtime on a thread of its own that lives in this node's
    /// network namespace: every socket its tasks open is the node's.
    pub(crate) fn runtime(&self) -> NodeRuntime {
        // Where `ip netns add` keeps the namespace (iproute2's NETNS_RUN_DIR).
        let path = format!("/var/run/netns/{}", self.netns);
        let (ready, handle) = std::sync::mpsc::channel();
        let (quit, quitted) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            ready.send(rt.handle().clone()).expect("the caller waits");
            rt.block_on(async {
                let _ = quitted.await;
            });
        });
        let handle = handle.recv().expect("the node's runtime starts");
        NodeRuntime {
            handle,
            quit: Some(quit),
            thread: Some(thread),
        }
    }
}

/// See [`Node::runtime`]. Dropping it stops the runtime and its tasks.
#[derive(Debug)]
pub(crate) struct NodeRuntime {
    pub(crate) handle: tokio::runtime::Handle,
    quit: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for NodeRuntime {
    fn drop(&mut self) {
        if let Some(quit) = self.quit.take() {
            let _ = quit.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the node's runtime thread panicked");
        }
    }
}

// === the ip command ===

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// Runs `ip ARGS`, failing the test if it fails.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
    let (code, stdout, stderr) = l5d_e2e::outcome(&out);
    assert_eq!(code, 0, "ip {}: {stderr}", args.join(" "));
    stdout
}

/// Runs `ip ARGS` for cleaning up: what is already gone is no error.
fn quiet_ip(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

/// A third octet whose 10.244.k.0/24 no address or route of the root
/// namespace uses, starting from one derived from the pid.
fn free_subnet(pid: u32, run: u32) -> u8 {
    let used = format!("{}{}", ip(&["-o", "-4", "addr"]), ip(&["-4", "route"]));
    let start = (pid.wrapping_mul(7).wrapping_add(run) % 250) as u8;
    (0..250u8)
        .map(|i| (start.wrapping_add(i)) % 250 + 1)
        .find(|k| !used.contains(&format!("10.244.{k}.")))
        .expect("a free 10.244.k.0/24")
}

/// Removes the namespaces and links an earlier run left behind (and the
/// processes still inside those namespaces): those whose name carries the
/// pid of a process that no longer exists.
fn remove_leftovers() {
    let dead = |pid: &str| !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists();
    for line in ip(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if let Some(pid) = name
            .strip_prefix("l5d-")
            .and_then(|rest| rest.split('-').next())
            && pid.bytes().all(|b| b.is_ascii_digit())
            && dead(pid)
        {
            // What the dead run started inside it, if anything still runs.
            for pid in ip(&["netns", "pids", name]).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
            quiet_ip(&["netns", "del", name]);
        }
    }
    for line in ip(&["-o", "link", "show"]).lines() {
        // "7: l5d123v0a@if6: <...>"
        let name = line.split(": ").nth(1).unwrap_or_default();
        let name = name.split('@').next().unwrap_or_default();
        if let Some(rest) = name.strip_prefix(PREFIX) {
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let kind = rest[pid.len()..].chars().next();
            if matches!(kind, Some('b' | 'v' | 'p')) && dead(&pid) {
                quiet_ip(&["link", "del", name]);
            }
        }
    }
}
