//! The README's first command: `deploy/local/mesh.sh` starts namerd on
//! SQLite, the proxy and the demo backends; requests reach them through all
//! three routers; a canary shift with namerctl takes effect; Ctrl-C stops
//! everything (SIGHUP and SIGTERM too, however the test was started); a
//! second run keeps the stored dtab, and a run after an unclean kill cleans
//! up the leftovers. The commands the launcher prints for the user are run
//! as printed, in a fresh shell without the launcher's environment.
//!
//! The quickstart listens on its documented fixed ports (4140, 4240, 4340,
//! 4180, 4321, 9990, 9991), below the range the OS hands out for port 0,
//! so it does not collide with the other tests.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use l5d_e2e::{binary, curl, namerctl, outcome, python_has, repo_root, skip_or_fail};
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

/// The launcher, up, and the commands it printed for the user to try.
struct Launched {
    launcher: Launcher,
    /// The command lines of "The mesh is up." block (indented lines that
    /// are not URLs), as printed.
    commands: Vec<String>,
}

impl Launched {
    /// The printed command line that starts with `prefix` (after `$bin/`
    /// for our binaries).
    fn command(&self, needle: &str) -> &str {
        self.commands
            .iter()
            .find(|c| c.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "the launcher prints a `{needle}` command: {:?}",
                    self.commands
                )
            })
    }
}

/// Starts the launcher with `state` as its state directory and waits for
/// the end of what it prints once the mesh is up.
///
/// Its signal dispositions are reset first: a test process started in the
/// background of a non-interactive shell has SIGINT ignored, children
/// inherit that, and bash cannot trap a signal ignored at entry.
async fn launch(state: &Path) -> Launched {
    let bin_dir = binary("namerd").parent().unwrap().to_path_buf();
    let mut child = Command::new("env")
        .arg("--default-signal=INT,TERM,HUP")
        .arg("bash")
        .arg(repo_root().join("deploy/local/mesh.sh"))
        .env("L5D_SKIP_BUILD", "1")
        .env("L5D_BIN_DIR", &bin_dir)
        .env("L5D_LOCAL_STATE", state)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("env runs the launcher");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = async {
        let mut up = false;
        let mut commands = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("The mesh is up.") {
                up = true;
            } else if up && line.contains("Ctrl-C stops everything") {
                return commands;
            } else if up && line.starts_with("  ") && !line.trim_start().starts_with('#') {
                commands.push(line.trim().to_string());
            }
        }
        panic!(
            "the launcher ended before the mesh was up; see {}/logs",
            state.display()
        );
    };
    let commands = tokio::time::timeout(Duration::from_secs(120), printed)
        .await
        .expect("the mesh is up within 120 s");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Launched {
        launcher: Launcher {
            child: Some(child),
            state: state.to_path_buf(),
        },
        commands,
    }
}

/// Runs a command line as the launcher printed it, the way a user would in
/// a new terminal: a fresh shell in `dir` whose environment carries nothing
/// of the launcher's or the test's (no NAMERCTL_BASE_URL, no L5D_*).
async fn as_printed(line: &str, dir: &Path) -> (i32, String, String) {
    let out = Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .output()
        .await
        .expect("bash runs");
    outcome(&out)
}

/// A signal to the launcher; it must exit 0 and free the ports.
async fn stop(mut launcher: Launcher, signal: &str) {
    let mut child = launcher.child.take().unwrap();
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| panic!("the launcher stops within 30 s of kill {signal}"))
        .unwrap();
    assert_eq!(status.code(), Some(0), "kill {signal} is a clean stop");
    for port in [4140, 4240, 4340, 4180, 4321, 9990, 9991] {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "port {port} is still open after kill {signal}"
        );
    }
}

/// curl's output; it must succeed.
async fn curl_ok(args: &[&str]) -> String {
    let (code, out, err) = curl(args).await;
    assert_eq!(code, 0, "curl {args:?}: {err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_a_whole_mesh_and_stops_cleanly() {
    let state = tempfile::tempdir().unwrap();
    let user = tempfile::tempdir().unwrap();
    let mesh = launch(state.path()).await;

    // What it prints works as printed, from a fresh shell elsewhere.
    for needle in ["curl -x localhost:4140", "curl --http2-prior-knowledge"] {
        let (code, out, err) = as_printed(mesh.command(needle), user.path()).await;
        assert_eq!((code, out.as_str()), (0, "world-v1\n"), "{needle}: {err}");
    }
    if python_has("grpc").await {
        let line = mesh.command("demo_client.py");
        let line = line.replace(
            "tests/grpcio/",
            &format!("{}/tests/grpcio/", repo_root().display()),
        );
        let (_, out, err) = as_printed(&line, user.path()).await;
        assert!(out.contains("\"served_by\": \"greeter\""), "{out}{err}");
    } else {
        skip_or_fail("python3 with grpcio (pip install -r tests/grpcio/requirements.txt)");
    }
    let dashboard = curl_ok(&["http://localhost:9990/"]).await;
    assert!(
        dashboard.contains("<title>linkerd-proxy</title>"),
        "the dashboard is served"
    );
    let routes = curl_ok(&["http://localhost:9990/routes.json"]).await;
    assert!(
        routes.contains("/svc/world"),
        "the routes the dashboard reads list the route"
    );

    // The canary shift as printed: the dtab, then a canary to world-v2 in
    // steps (10 s of intervals) that ends with all traffic there.
    let (code, current, err) =
        as_printed(mesh.command("namerctl dtab get internal"), user.path()).await;
    assert_eq!(code, 0, "namerctl dtab get: {err}");
    assert!(current.contains("/srv/world-v1"), "{current}");
    let (code, out, err) =
        as_printed(mesh.command("namerctl canary start internal"), user.path()).await;
    assert_eq!(code, 0, "namerctl canary start: {out}{err}");
    let since = Instant::now();
    while curl_ok(&["-x", "localhost:4140", "http://world/"]).await != "world-v2\n" {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no request reached world-v2"
        );
    }
    stop(mesh.launcher, "-INT").await;

    // Again: the dtab was kept, and nothing left over gets in the way.
    let mut mesh = launch(state.path()).await;
    let (_, current, _) = namerctl(NAMERD, &["dtab", "get", "internal"]).await;
    assert!(
        current
            .lines()
            .any(|l| l.starts_with("/host/world ") && l.contains("=> /srv/world-v2 ;")),
        "the canary's end was kept: {current}"
    );
    // An unclean end: the launcher is killed and its children linger.
    let mut killed = mesh.launcher.child.take().unwrap();
    let pid = killed.id().unwrap().to_string();
    Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .await
        .unwrap();
    killed.wait().await.unwrap();
    let mesh = launch(state.path()).await;
    let body = curl_ok(&["-x", "localhost:4140", "http://world/"]).await;
    assert!(body == "world-v1\n" || body == "world-v2\n", "{body}");
    stop(mesh.launcher, "-HUP").await;
    // And SIGTERM, as a service manager stops it.
    let mesh = launch(state.path()).await;
    stop(mesh.launcher, "-TERM").await;
}
