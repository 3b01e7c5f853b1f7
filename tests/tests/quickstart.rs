//! The README's first command: `deploy/local/mesh.sh` starts namerd on
//! SQLite, the proxy and the demo backends; requests reach them through all
//! three routers; a canary shift with namerctl takes effect; Ctrl-C stops
//! everything; a second run keeps the stored dtab, and a run after an
//! unclean kill cleans up the leftovers.
//!
//! The quickstart listens on its documented fixed ports (4140, 4240, 4340,
//! 4180, 4321, 9990, 9991), below the range the OS hands out for port 0,
//! so it does not collide with the other tests.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use l5d_e2e::{binary, namerctl, python_has, repo_root, skip_or_fail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const NAMERD: &str = "http://127.0.0.1:4180";

/// The launcher, stopped on drop (a failing test must not leave the
/// mesh running on the fixed ports): SIGTERM, which its trap turns into a
/// clean stop, then whatever its pid file still lists.
struct Launcher {
    child: Option<Child>,
    state: std::path::PathBuf,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Ok(pids) = std::fs::read_to_string(self.state.join("pids")) {
            for pid in pids.lines() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", pid])
                    .status();
            }
        }
    }
}

/// Starts the launcher with `state` as its state directory and waits for
/// "The mesh is up."
async fn launch(state: &Path) -> Launcher {
    let bin_dir = binary("namerd").parent().unwrap().to_path_buf();
    let mut child = Command::new("bash")
        .arg(repo_root().join("deploy/local/mesh.sh"))
        .env("L5D_SKIP_BUILD", "1")
        .env("L5D_BIN_DIR", &bin_dir)
        .env("L5D_LOCAL_STATE", state)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("bash runs the launcher");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("The mesh is up.") {
                return;
            }
        }
        panic!(
            "the launcher ended before the mesh was up; see {}/logs",
            state.display()
        );
    };
    tokio::time::timeout(Duration::from_secs(120), up)
        .await
        .expect("the mesh is up within 120 s");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Launcher {
        child: Some(child),
        state: state.to_path_buf(),
    }
}

/// SIGINT (Ctrl-C) to the launcher; it must exit 0 and free the ports.
async fn interrupt(mut launcher: Launcher) {
    let mut child = launcher.child.take().unwrap();
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the launcher stops within 30 s of Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C is a clean stop");
    for port in [4140, 4240, 4340, 4180, 4321, 9990, 9991] {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "port {port} is still open after Ctrl-C"
        );
    }
}

async fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_a_whole_mesh_and_stops_cleanly() {
    let state = tempfile::tempdir().unwrap();
    let mesh = launch(state.path()).await;

    assert_eq!(
        curl(&["-x", "localhost:4140", "http://world/"]).await,
        "world-v1\n"
    );
    assert_eq!(
        curl(&[
            "--http2-prior-knowledge",
            "-H",
            "Host: world",
            "http://localhost:4240/"
        ])
        .await,
        "world-v1\n"
    );
    if python_has("grpc").await {
        let out = Command::new("python3")
            .arg(repo_root().join("tests/grpcio/demo_client.py"))
            .args(["--target", "localhost:4340", "unary", "you"])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("\"served_by\": \"greeter\""), "{stdout}");
    } else {
        skip_or_fail("python3 with grpcio (pip install -r tests/grpcio/requirements.txt)");
    }
    let dashboard = curl(&["http://localhost:9990/"]).await;
    assert!(
        dashboard.contains("/svc/world"),
        "the dashboard lists the route"
    );

    // The canary shift of the README: get, edit, update with the version.
    let (code, current, err) = namerctl(NAMERD, &["dtab", "get", "internal"]).await;
    assert_eq!(code, 0, "{err}");
    let canary = current.replace("/srv/world-v1", "9 * /srv/world-v1 & 1 * /srv/world-v2");
    assert_ne!(canary, current, "the dtab names world-v1: {current}");
    let file = state.path().join("canary.dtab");
    std::fs::write(&file, &canary).unwrap();
    let (code, _, err) = namerctl(
        NAMERD,
        &["dtab", "update", "internal", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "namerctl dtab update: {err}");
    let since = Instant::now();
    while curl(&["-x", "localhost:4140", "http://world/"]).await != "world-v2\n" {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no request reached world-v2"
        );
    }
    interrupt(mesh).await;

    // Again: the dtab was kept, and nothing left over gets in the way.
    let mut mesh = launch(state.path()).await;
    let (_, current, _) = namerctl(NAMERD, &["dtab", "get", "internal"]).await;
    assert!(
        current.contains("9.00*/srv/world-v1"),
        "the canary dtab was kept: {current}"
    );
    // An unclean end: the launcher is killed and its children linger.
    let mut killed = mesh.child.take().unwrap();
    let pid = killed.id().unwrap().to_string();
    Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .await
        .unwrap();
    killed.wait().await.unwrap();
    let mesh = launch(state.path()).await;
    let body = curl(&["-x", "localhost:4140", "http://world/"]).await;
    assert!(body == "world-v1\n" || body == "world-v2\n", "{body}");
    interrupt(mesh).await;
}
