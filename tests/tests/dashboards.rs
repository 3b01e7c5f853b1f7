//! The admin dashboards in a real browser: headless Chromium (Debian's
//! `chromium`) driven by `playwright-core` from `tests/browser/` (its
//! lockfile committed; `.ci/run` runs `npm ci` there), against the real
//! binaries: namerd on SQLite with the fs namer, a proxy on `io.l5d.mesh`,
//! and `l5d-demo` backends `world-v1` and `world-v2`.
//!
//! The checks themselves are in `tests/browser/dashboards.mjs` (the
//! overview's charts under load, the playground's tree and override, the
//! editor's inline error, two editors' conflict, rollback with the proxy's
//! traffic following, `<script>` shown as text, a cross-origin write
//! refused) and `tests/browser/thousand.mjs` (page load and update cost
//! with 1,000 logical names). Screenshots go to
//! `$CARGO_TARGET_TMPDIR/dashboards/`. Without node, Chromium or the npm
//! packages the tests say SKIPPED, and fail under CI=true.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, repo_root, skip_or_fail};
use tokio::process::Command;
use tokio::sync::Mutex;

const DTAB: &str =
    "/srv => /#/io.l5d.fs;\n/host => /srv;\n/svc => /host;\n/host/world => /srv/world-v1;\n";

/// A whole browser run may take this long at most (it takes well under a
/// minute here; each wait inside it is bounded at 60 s).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// One browser at a time: both tests measure, and two Chromiums on two
/// cores would measure each other.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// What the browser scripts need, found or reported missing.
struct Browser {
    chromium: PathBuf,
    dir: PathBuf,
    out: PathBuf,
}

impl Browser {
    async fn find() -> Option<Browser> {
        let dir = repo_root().join("tests/browser");
        let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        });
        let node = Command::new("node").arg("--version").output().await;
        let why = if !node.is_ok_and(|o| o.status.success()) {
            Some("node is not installed (apt-get install nodejs)".to_string())
        } else if chromium.is_none() {
            Some("Chromium is not installed (apt-get install chromium, or set CHROMIUM)".into())
        } else if !dir.join("node_modules/playwright-core").exists() {
            Some(format!(
                "playwright-core is not installed: run `npm ci` in {}",
                dir.display()
            ))
        } else {
            None
        };
        if let Some(why) = why {
            skip_or_fail(&why);
            return None;
        }
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboards");
        std::fs::create_dir_all(&out).expect("the screenshot folder is made");
        Some(Browser {
            chromium: chromium.expect("checked above"),
            dir,
            out,
        })
    }

    /// Runs `node <script>` with `env`, echoing its output; its result
    /// lines and exit status.
    async fn run(&self, script: &str, env: &[(&str, String)]) -> String {
        let started = Instant::now();
        let child = Command::new("node")
            .arg(script)
            .current_dir(&self.dir)
            .env("CHROMIUM", &self.chromium)
            .env("OUT_DIR", &self.out)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{script} did not finish within {RUN_LIMIT:?}"))
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("{stdout}");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        println!(
            "{script}: {:.1} s; screenshots in {}",
            started.elapsed().as_secs_f64(),
            self.out.display()
        );
        assert!(out.status.success(), "{script} failed:\n{stdout}");
        stdout
    }
}

/// namerd, a proxy reading its `internal` dtab over `io.l5d.mesh`, and the
/// two backends the dtab can send `world` to.
struct Mesh {
    _dir: tempfile::TempDir,
    namerd: Namerd,
    proxy: Proxy,
    _backends: Vec<Demo>,
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
        let port = namerd.mesh.rsplit(':').next().unwrap();
        let proxy = Proxy::start(&format!(
            "admin: {{port: 0}}\n\
             telemetry: [{{kind: io.l5d.recentRequests, sampleRate: 1.0, capacity: 20}}]\n\
             routers:\n- protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  \
             interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal}}\n"
        ))
        .await;
        Mesh {
            _dir: dir,
            namerd,
            proxy,
            _backends: backends,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_in_a_browser() {
    let _one = BROWSER.lock().await;
    let Some(browser) = Browser::find().await else {
        return;
    };
    let mesh = Mesh::start().await;
    let env = [
        ("PROXY_ADMIN", mesh.proxy.admin.clone()),
        ("PROXY_HTTP", mesh.proxy.router("http").to_string()),
        ("NAMERD_ADMIN", mesh.namerd.admin.clone()),
        ("NAMERD_HTTP", mesh.namerd.http.clone()),
        ("NAMESPACE", "internal".to_string()),
    ];
    let out = browser.run("dashboards.mjs", &env).await;
    assert!(out.contains(" passed, 0 failed"), "{out}");
    for shot in [
        "proxy-overview",
        "proxy-playground",
        "proxy-recent-requests",
        "namerd-editor-invalid",
        "namerd-editor-conflict",
        "namerd-history",
        "namerd-namespaces",
        "namerd-delegator",
    ] {
        let path = browser.out.join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(size > 1000, "{} is missing or empty", path.display());
    }
}

/// A proxy with 1,000 logical names seen (the default interpreter sends
/// every `/svc/<n>` to one backend), and its overview's load and update
/// cost in the browser. The figures are printed for the record; the
/// bounds asserted are loose, to catch a page that stopped scaling, not to
/// time a machine.
#[tokio::test(flavor = "multi_thread")]
async fn overview_with_a_thousand_names() {
    let _one = BROWSER.lock().await;
    let Some(browser) = Browser::find().await else {
        return;
    };
    let backend = Demo::start("http", "many", &[]).await;
    let proxy = Proxy::start(&format!(
        "admin: {{port: 0}}\nrouters:\n- protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  \
         dtab: /svc => /$/inet/127.0.0.1/{};\n",
        backend.addr.port()
    ))
    .await;
    let env = [
        ("PROXY_ADMIN", proxy.admin.clone()),
        ("PROXY_HTTP", proxy.router("http").to_string()),
        ("NAMES", "1000".to_string()),
    ];
    let out = browser.run("thousand.mjs", &env).await;
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
