//! A real third-party gRPC client (Python grpcio, from PyPI) streams
//! `StreamBoundTree` and `StreamReplicas` from a running namerd (SQLite, the
//! fs namer), and sees the new tree after `namerctl dtab update` and the new
//! addresses after a file in the fs namer's directory changes.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::time::Duration;

use l5d_e2e::{Namerd, namerctl, python_has, repo_root, skip_or_fail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

/// The client's output, one queue of lines per RPC (the two streams
/// interleave in any order).
struct Output {
    lines: Lines<BufReader<ChildStdout>>,
    queued: HashMap<String, VecDeque<String>>,
}

impl Output {
    /// The next JSON line the client prints for `rpc`, within 20 s.
    async fn next(&mut self, rpc: &str) -> String {
        let wait = async {
            loop {
                if let Some(line) = self.queued.get_mut(rpc).and_then(VecDeque::pop_front) {
                    return line;
                }
                let line = self
                    .lines
                    .next_line()
                    .await
                    .expect("the client's output is readable")
                    .expect("the client is still running");
                let from = ["StreamBoundTree", "StreamReplicas"]
                    .into_iter()
                    .find(|r| line.contains(&format!("\"rpc\": \"{r}\"")))
                    .unwrap_or("other");
                self.queued
                    .entry(from.to_string())
                    .or_default()
                    .push_back(line);
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no {rpc} message within 20 s"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_streams_bound_trees_and_replicas() {
    if !python_has("grpc_tools").await {
        skip_or_fail("python3 with grpcio-tools (pip install -r tests/grpcio/requirements.txt)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::write(disco.join("web"), "127.0.0.1 8080\n").unwrap();
    std::fs::write(disco.join("web2"), "127.0.0.1 9090\n").unwrap();
    let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
    let url = namerd.base_url();
    namerd
        .create_dtab(dir.path(), "internal", "/svc => /#/io.l5d.fs;\n")
        .await;

    let script = repo_root().join("tests/grpcio/mesh_client.py");
    let mut client = Command::new("python3")
        .arg(script)
        .args([&namerd.mesh, "internal", "/svc/web", "/#/io.l5d.fs/web"])
        .args([
            "--trees",
            "2",
            "--replicas",
            "2",
            "--skip-pending",
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = Output {
        lines: BufReader::new(client.stdout.take().unwrap()).lines(),
        queued: HashMap::new(),
    };

    let tree = out.next("StreamBoundTree").await;
    assert!(tree.contains("\"tree\": \"/#/io.l5d.fs/web\""), "{tree}");
    let replicas = out.next("StreamReplicas").await;
    assert!(
        replicas.contains("\"endpoints\": [\"127.0.0.1:8080\"]"),
        "{replicas}"
    );

    // A canary shift with namerctl, compare-and-set on the version it read.
    let dtab = dir.path().join("internal.dtab");
    std::fs::write(
        &dtab,
        "/svc => /#/io.l5d.fs; /svc/web => 9 * /#/io.l5d.fs/web & 1 * /#/io.l5d.fs/web2;\n",
    )
    .unwrap();
    let (code, _, err) = namerctl(
        &url,
        &[
            "dtab",
            "update",
            "internal",
            dtab.to_str().unwrap(),
            "--version",
            "AAAAAAAAAAE=",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let tree = out.next("StreamBoundTree").await;
    assert!(
        tree.contains(
            "\"leaves\": [{\"id\": \"/#/io.l5d.fs/web\", \"residual\": \"/\"}, \
             {\"id\": \"/#/io.l5d.fs/web2\", \"residual\": \"/\"}]"
        ) && tree.contains("\"weight\": 9.0"),
        "the update reached the client: {tree}"
    );

    // A change in the fs namer's directory reaches StreamReplicas.
    std::fs::write(disco.join("web"), "127.0.0.1 8080\n127.0.0.1 8081\n").unwrap();
    let replicas = out.next("StreamReplicas").await;
    assert!(
        replicas.contains("\"endpoints\": [\"127.0.0.1:8080\", \"127.0.0.1:8081\"]"),
        "the file change reached the client: {replicas}"
    );

    let status = tokio::time::timeout(Duration::from_secs(20), client.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the client saw everything it waited for");
    assert_eq!(namerd.stop().await, Some(0));
}
