//! `namerctl canary` and `namerctl dtab update --dry-run` end to end, every
//! part a real process: namerd on SQLite with the fs namer, a linkerd-proxy
//! whose requests make namerd stream names, `l5d-demo` backends
//! `world-v1` and `world-v2`, and namerctl. The canary test is the
//! "canary shift" walkthrough of docs/namerctl.md.
//!
//! The canary's gate is a script that tells the test which step is in
//! force (a file `asked.<step>`) and waits for the test's verdict (a file
//! `verdict.<step>` holding the exit status), so each step is measured
//! before the next is written, with no timing luck.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_e2e::{Demo, Namerd, Proxy, binary, curl, namerctl};
use tokio::process::{Child, Command};

const DTAB: &str =
    "/srv => /#/io.l5d.fs;\n/host => /srv;\n/svc => /host;\n/host/world => /srv/world-v1;\n";

/// Generous bounds on what takes milliseconds, so a loaded machine does
/// not fail the tests: the proxy following a dtab change, and namerctl
/// asking the gate after writing a step.
const APPLY_LIMIT: Duration = Duration::from_secs(30);
const GATE_LIMIT: Duration = Duration::from_secs(60);

/// Concurrent client tasks per measurement, each over keep-alive.
const WORKERS: usize = 8;

fn proxy_config(mesh: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    format!(
        "admin: {{port: 0}}\nrouters:\n- protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  \
         interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal}}\n"
    )
}

/// namerd with the `internal` dtab, `world-v1` and `world-v2`, a proxy,
/// and the canary's gate script.
struct Mesh {
    dir: tempfile::TempDir,
    namerd: Namerd,
    proxy: Proxy,
    backends: Vec<Demo>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Mesh {
    async fn start() -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let mut backends = Vec::new();
        for name in ["world-v1", "world-v2"] {
            let demo = Demo::start("http", name, &[]).await;
            demo.register(dir.path());
            backends.push(demo);
        }
        let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
        namerd.create_dtab(dir.path(), "internal", DTAB).await;
        let proxy = Proxy::start(&proxy_config(&namerd.mesh)).await;
        std::fs::write(dir.path().join("gate.sh"), GATE).unwrap();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Mesh {
            dir,
            namerd,
            proxy,
            backends,
            client,
        }
    }

    fn base(&self) -> String {
        self.namerd.base_url()
    }

    /// GET `/` through the proxy for `host`: who served it, or why not.
    async fn get(&self, host: &str) -> Result<String, String> {
        get(&self.client, self.proxy.router("http"), host).await
    }

    /// The dtab `internal` as `namerctl dtab get` prints it, and its
    /// version.
    async fn dtab(&self) -> (String, String) {
        self.namerd.dtab("internal").await
    }

    /// Another operator's edit: `edit` applied to the dtab as stored now,
    /// written with compare-and-set on the version read.
    async fn edit_dtab(&self, edit: impl FnOnce(&str) -> String) {
        let (text, version) = self.dtab().await;
        self.namerd
            .update_dtab(self.dir.path(), "internal", &version, &edit(&text))
            .await;
    }

    /// Waits until the proxy's interpreter state for `/svc/world` shows
    /// `tree` (namerd's rendering of the bound tree: ids and weights).
    async fn wait_for_tree(&self, tree: &str) {
        let url = format!("http://{}/interpreter_state.json", self.proxy.admin);
        let start = Instant::now();
        loop {
            let (_, state, _) = curl(&[&url]).await;
            if state_shows(&state, tree) {
                return;
            }
            assert!(
                start.elapsed() < APPLY_LIMIT,
                "the proxy did not show {tree} within {APPLY_LIMIT:?}: {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `namerctl canary start` in the background, over five steps with
    /// the gate script and no interval (the gate waits for the test).
    fn start_canary(&self) -> Child {
        let gate = format!("sh {}", self.dir.path().join("gate.sh").display());
        Command::new(binary("namerctl"))
            .args([
                "canary",
                "start",
                "internal",
                "--path",
                "/host/world",
                "--from",
                "/srv/world-v1",
                "--to",
                "/srv/world-v2",
                "--steps",
                "1,5,25,50,100",
                "--interval",
                "0s",
                "--gate",
                &gate,
            ])
            .env("NAMERCTL_BASE_URL", self.base())
            .env("GATE_DIR", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("namerctl starts")
    }

    /// Waits for the gate to ask at `step`, then answers `status`.
    async fn answer_gate(&self, step: usize, status: u8) {
        let asked = self.dir.path().join(format!("asked.{step}"));
        let start = Instant::now();
        while !asked.exists() {
            assert!(
                start.elapsed() < GATE_LIMIT,
                "the gate was not asked at step {step} within {GATE_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Written whole, then renamed: the script never reads half a file.
        let verdict = self.dir.path().join(format!("verdict.{step}"));
        let part = verdict.with_extension("part");
        std::fs::write(&part, format!("{status}\n")).unwrap();
        std::fs::rename(&part, &verdict).unwrap();
    }

    /// `n` requests for `world` from [`WORKERS`] tasks: the share (in
    /// percent) that `world-v2` served. Every request must succeed.
    async fn share_to_v2(self: &Arc<Self>, n: usize) -> f64 {
        let v2 = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (mesh, v2) = (self.clone(), v2.clone());
                let count = n / WORKERS + usize::from(w < n % WORKERS);
                tokio::spawn(async move {
                    for _ in 0..count {
                        match mesh.get("world").await.as_deref() {
                            Ok("world-v2") => {
                                v2.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok("world-v1") => {}
                            other => panic!("a request for world failed: {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        v2.load(Ordering::Relaxed) as f64 * 100.0 / n as f64
    }

    async fn stop(self) {
        assert_eq!(self.proxy.stop().await, Some(0), "the proxy exits cleanly");
        self.namerd.stop().await;
        for b in self.backends {
            b.stop().await;
        }
    }
}

/// The gate: tells the test the step in force, then exits with the
/// test's verdict (bounded: 1 after 120 s without one).
const GATE: &str = r#"step="$NAMERCTL_CANARY_STEP"
: > "$GATE_DIR/asked.$step"
i=0
while [ ! -f "$GATE_DIR/verdict.$step" ]; do
  i=$((i + 1))
  [ "$i" -gt 2400 ] && exit 1
  sleep 0.05
done
exit "$(cat "$GATE_DIR/verdict.$step")"
"#;

/// GET `/` through the router at `proxy` for `host`: `x-served-by`.
async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    proxy: &str,
    host: &str,
) -> Result<String, String> {
    let req = Request::get(format!("http://{proxy}/"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "no response within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = rsp.status();
    let served = rsp
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    rsp.into_body().collect().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status} from {served:?}"));
    }
    Ok(served)
}

/// Whether the proxy's `/interpreter_state.json` shows `tree` as the bound
/// tree of `/svc/world`.
fn state_shows(state: &str, tree: &str) -> bool {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(state) else {
        return false;
    };
    let mut found = false;
    visit(&json, &mut |v| {
        if v.get("name").and_then(|n| n.as_str()) == Some("/svc/world")
            && v.get("tree").and_then(|t| t.as_str()) == Some(tree)
        {
            found = true;
        }
    });
    found
}

fn visit(v: &serde_json::Value, f: &mut impl FnMut(&serde_json::Value)) {
    f(v);
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| visit(i, f)),
        serde_json::Value::Object(map) => map.values().for_each(|i| visit(i, f)),
        _ => {}
    }
}

/// The bound tree of `/svc/world` with `percent` to world-v2.
fn tree_at(percent: u8) -> String {
    match percent {
        0 => "/#/io.l5d.fs/world-v1".to_string(),
        100 => "/#/io.l5d.fs/world-v2".to_string(),
        p => format!(
            "{:.2}*/#/io.l5d.fs/world-v1 & {}/#/io.l5d.fs/world-v2",
            f64::from(100 - p),
            if p == 1 {
                String::new()
            } else {
                format!("{:.2}*", f64::from(p))
            }
        ),
    }
}

/// Requests for `world` one after another until stopped: how many were
/// sent and how many failed, over the whole of a canary.
struct Background {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    fn start(mesh: &Arc<Mesh>) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (m, s, n, f) = (mesh.clone(), stop.clone(), sent.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if m.get("world").await.is_err() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        Background {
            stop,
            sent,
            failed,
            task,
        }
    }

    /// (sent, failed)
    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// namerctl's exit status and output, within 60 s.
async fn finish(child: Child) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("namerctl ends within 60 s of its last gate")
        .unwrap();
    l5d_e2e::outcome(&out)
}

/// The dentries of `namerctl dtab get`'s text, without the spaces it
/// aligns them with: `/host/world=>/srv/world-v2`.
fn dentries(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split(';'))
        .map(|d| d.split_whitespace().collect::<String>())
        .filter(|d| !d.is_empty())
        .collect()
}

fn mesh_arc(mesh: Mesh) -> Arc<Mesh> {
    Arc::new(mesh)
}

fn into_mesh(mesh: Arc<Mesh>) -> Mesh {
    Arc::try_unwrap(mesh).unwrap_or_else(|_| panic!("no task holds the mesh"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_exactly_the_names_the_proxy_streams_that_would_change() {
    let mesh = Mesh::start().await;
    // The proxy asks namerd for /svc/world and /svc/world-v2, and streams
    // both from then on.
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v1"));
    assert_eq!(mesh.get("world-v2").await.as_deref(), Ok("world-v2"));
    let (_, version) = mesh.dtab().await;

    // The first step of the canary, and a dentry for a name nobody asked
    // for: only /svc/world is listed.
    let file: PathBuf = mesh.dir.path().join("proposed.dtab");
    std::fs::write(
        &file,
        DTAB.replace(
            "/host/world => /srv/world-v1;",
            "/host/world => 99 * /srv/world-v1 & 1 * /srv/world-v2;\n/host/nobody => /srv/world-v2;",
        ),
    )
    .unwrap();
    let (code, out, err) = namerctl(
        &mesh.base(),
        &["dtab", "update", "--dry-run", "internal", path_str(&file)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "Dry run of dtab internal: 1 of 2 streamed names would change; nothing was written\n\
             /svc/world: 1 watchers\n  before: {}\n  after:  {}\n",
            tree_at(0),
            tree_at(1)
        )
    );
    let (_, after) = mesh.dtab().await;
    assert_eq!(after, version, "a dry run writes nothing");
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v1"));
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_over_five_steps_moves_traffic_through_the_proxy() {
    let mesh = mesh_arc(Mesh::start().await);
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v1"));
    let background = Background::start(&mesh);
    let canary = mesh.start_canary();

    // The proxy picks by weight at random per request, so a step's share
    // is binomial: 2,000 requests put 2 points at 4.1 standard deviations
    // at 5% (sigma 0.49 points) and 9 at 1%; 25% and 50% need 10,000
    // (sigma 0.43 and 0.50 points) for the same 4.
    let steps: [(usize, u8, usize); 5] = [
        (1, 1, 2_000),
        (2, 5, 2_000),
        (3, 25, 10_000),
        (4, 50, 10_000),
        (5, 100, 2_000),
    ];
    for (step, percent, n) in steps {
        mesh.wait_for_tree(&tree_at(percent)).await;
        let share = mesh.share_to_v2(n).await;
        eprintln!(
            "canary step {step}: {share:.2}% of {n} requests reached world-v2 (dentry {percent}%)"
        );
        if percent == 100 {
            assert_eq!(share, 100.0, "step {step}: the plain dentry to world-v2");
        } else {
            assert!(
                (share - f64::from(percent)).abs() <= 2.0,
                "step {step}: world-v2 got {share:.2}%, expected {percent} ± 2"
            );
            mesh.answer_gate(step, 0).await;
        }
    }
    let (code, out, err) = finish(canary).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("step 5/5: 100% of /host/world to /srv/world-v2"),
        "{out}"
    );
    let (text, _) = mesh.dtab().await;
    assert!(
        dentries(&text).contains(&"/host/world=>/srv/world-v2".to_string()),
        "{text}"
    );
    let (sent, failed) = background.stop().await;
    eprintln!("canary: {failed} of {sent} background requests failed during the canary");
    assert_eq!(failed, 0);
    into_mesh(mesh).stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_gate_aborts_back_to_v1_keeping_another_operators_edit() {
    let mesh = mesh_arc(Mesh::start().await);
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v1"));
    let background = Background::start(&mesh);
    let canary = mesh.start_canary();

    mesh.wait_for_tree(&tree_at(1)).await;
    mesh.answer_gate(1, 0).await;
    mesh.wait_for_tree(&tree_at(5)).await;
    // Meanwhile another operator routes `hello` to world-v2.
    mesh.edit_dtab(|text| format!("{text}\n/host/hello => /srv/world-v2;\n"))
        .await;
    mesh.answer_gate(2, 0).await;
    mesh.wait_for_tree(&tree_at(25)).await;
    // The gate fails with 25% on world-v2.
    mesh.answer_gate(3, 1).await;
    let (code, out, err) = finish(canary).await;
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        out.contains("Aborted the canary on /host/world: restored /host/world => /srv/world-v1"),
        "{out}"
    );
    assert!(
        err.contains("the gate failed after step 3 of the canary on /host/world"),
        "{err}"
    );

    mesh.wait_for_tree(&tree_at(0)).await;
    let share = mesh.share_to_v2(2_000).await;
    eprintln!("canary abort: {share:.2}% of 2000 requests reached world-v2 after the abort");
    assert_eq!(share, 0.0, "every request back on world-v1");
    let (sent, failed) = background.stop().await;
    eprintln!("canary abort: {failed} of {sent} background requests failed");
    assert_eq!(failed, 0);
    // The other operator's edit survived the abort.
    let (text, _) = mesh.dtab().await;
    let kept = dentries(&text);
    assert!(
        kept.contains(&"/host/hello=>/srv/world-v2".to_string())
            && kept.contains(&"/host/world=>/srv/world-v1".to_string()),
        "{text}"
    );
    assert_eq!(mesh.get("hello").await.as_deref(), Ok("world-v2"));
    into_mesh(mesh).stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_the_canarys_dentry_stops_it_and_abort_refuses() {
    let mesh = Mesh::start().await;
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v1"));
    let canary = mesh.start_canary();
    mesh.wait_for_tree(&tree_at(1)).await;
    // An operator sends all of world to v2 by hand, during step 1.
    mesh.edit_dtab(|text| {
        text.lines()
            .map(|l| match l.split_whitespace().next() {
                Some("/host/world") => "/host/world => /srv/world-v2;",
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
    mesh.wait_for_tree(&tree_at(100)).await;
    mesh.answer_gate(1, 0).await;
    let (code, out, err) = finish(canary).await;
    assert_eq!(code, 3, "{out}{err}");
    let edited = "the canary's dentry for /host/world in dtab internal was changed by";
    assert!(err.contains(edited), "{err}");

    let (code, _, err) = namerctl(&mesh.base(), &["canary", "abort", "internal"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(edited), "{err}");
    assert!(
        err.contains(
            "(now `/host/world => /srv/world-v2`, the canary wrote \
             `/host/world => 99.00*/srv/world-v1 & /srv/world-v2`); not overwriting their change"
        ),
        "{err}"
    );
    // The operator's edit stands.
    assert_eq!(mesh.get("world").await.as_deref(), Ok("world-v2"));
    mesh.stop().await;
}
