//! Helpers for end-to-end tests: the project's binaries as real processes,
//! and checks for the third-party clients the tests drive.
//!
//! Binaries are found in the target directory beside the running test
//! (`target/debug/namerd`, `target/debug/linkerd-proxy`, `target/debug/l5d-demo`), where `cargo test --workspace` has built them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The path of one of the workspace's binaries.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build --bins` first)",
        path.display()
    );
    path
}

/// Whether tests run in CI, where a missing tool or service is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips (loudly) outside CI, fails in CI.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("required for this test under CI=true: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// A running namerd and the addresses it printed.
#[derive(Debug)]
pub struct Namerd {
    child: Child,
    pub admin: String,
    pub http: String,
    pub mesh: String,
}

impl Namerd {
    /// Starts `namerd -` with `config` on standard input and waits for its
    /// `namerd listening ...` line.
    pub async fn start(config: &str) -> Namerd {
        Namerd::spawn(config, Stdio::inherit()).await
    }

    /// As [`Namerd::start`], keeping what namerd logs for
    /// [`Namerd::stop_with_log`].
    pub async fn start_logged(config: &str) -> Namerd {
        Namerd::spawn(config, Stdio::piped()).await
    }

    /// As [`Namerd::start`], run under `wrapper` (see `spawn_via`), e.g.
    /// `env KUBECONFIG=...` for a namerd of a test's own Kubernetes API.
    pub async fn start_via(wrapper: &[&str], config: &str) -> Namerd {
        let child = spawn_via(wrapper, "namerd", config, Stdio::inherit()).await;
        Namerd::ready(child).await
    }

    async fn spawn(config: &str, stderr: Stdio) -> Namerd {
        let child = spawn_with_config("namerd", config, stderr).await;
        Namerd::ready(child).await
    }

    /// Waits for namerd's readiness line and reads its addresses.
    async fn ready(mut child: Child) -> Namerd {
        let line = ready_line(&mut child, "namerd").await;
        let get =
            |name: &str| field(&line, name).unwrap_or_else(|| panic!("no {name}= in {line:?}"));
        let (admin, http, mesh) = (get("admin"), get("http"), get("mesh"));
        Namerd {
            child,
            admin,
            http,
            mesh,
        }
    }

    /// namerd on SQLite (`dir/namerd.db`) with the fs namer over
    /// `dir/disco`, its HTTP and gRPC interfaces and admin on ports the OS
    /// picks: the namerd of most end-to-end tests.
    pub fn fs_config(dir: &Path) -> String {
        format!(
            "admin: {{port: 0}}\n\
             storage: {{kind: io.l5d.sqlite, path: {db}}}\n\
             namers: [{{kind: io.l5d.fs, rootDir: {disco}}}]\n\
             interfaces:\n- {{kind: io.l5d.httpController, port: 0}}\n- {{kind: io.l5d.mesh, port: 0}}\n",
            db = dir.join("namerd.db").display(),
            disco = dir.join("disco").display(),
        )
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Creates the dtab namespace `ns` holding `text` with namerctl (from
    /// a file in `dir`), failing the test if it cannot.
    pub async fn create_dtab(&self, dir: &Path, ns: &str, text: &str) {
        let file = dir.join(format!("{ns}.dtab"));
        std::fs::write(&file, text).expect("the dtab file is written");
        let path = file.to_str().expect("a UTF-8 path");
        let (code, _, err) = namerctl(&self.base_url(), &["dtab", "create", ns, path]).await;
        assert_eq!(code, 0, "namerctl dtab create {ns}: {err}");
    }

    /// The dtab `ns` as `namerctl dtab get` prints it, and its version.
    pub async fn dtab(&self, ns: &str) -> (String, String) {
        let (code, out, err) = namerctl(&self.base_url(), &["dtab", "get", ns]).await;
        assert_eq!(code, 0, "namerctl dtab get {ns}: {err}");
        let version = out
            .lines()
            .find_map(|l| l.strip_prefix("# version "))
            .expect("a version line")
            .trim()
            .to_string();
        (out, version)
    }

    /// Writes `text` to the dtab `ns` with namerctl (from a file in `dir`),
    /// compare-and-set on `version` (the one `text` was edited from).
    pub async fn update_dtab(&self, dir: &Path, ns: &str, version: &str, text: &str) {
        let file = dir.join(format!("{ns}.update.dtab"));
        std::fs::write(&file, text).expect("the dtab file is written");
        let path = file.to_str().expect("a UTF-8 path");
        let args = ["dtab", "update", "--version", version, ns, path];
        let (code, _, err) = namerctl(&self.base_url(), &args).await;
        assert_eq!(code, 0, "namerctl dtab update {ns}: {err}");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then the exit status (within 15 s).
    pub async fn stop(mut self) -> Option<i32> {
        signal_and_wait(&mut self.child, "-TERM").await
    }

    /// SIGTERM, then everything namerd logged (started with
    /// [`Namerd::start_logged`]).
    pub async fn stop_with_log(mut self) -> String {
        stop_with_log(&mut self.child, "namerd").await
    }

    /// SIGKILL: namerd dies without a chance to close anything.
    pub async fn kill(mut self) {
        signal_and_wait(&mut self.child, "-KILL").await;
    }
}

/// SIGTERM, then everything the child wrote on its piped standard error.
async fn stop_with_log(child: &mut Child, what: &str) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut stderr = child
        .stderr
        .take()
        .unwrap_or_else(|| panic!("{what} was started with start_logged"));
    let mut log = String::new();
    let read = async {
        stderr
            .read_to_string(&mut log)
            .await
            .unwrap_or_else(|e| panic!("{what}'s log is readable: {e}"))
    };
    let (_, _) = tokio::join!(signal_and_wait(child, "-TERM"), read);
    log
}

/// Starts `<name> -` with `config` on standard input and stdout piped.
async fn spawn_with_config(name: &str, config: &str, stderr: Stdio) -> Child {
    spawn_via(&[], name, config, stderr).await
}

/// Starts binary `name` with `config` on standard input, under `wrapper`
/// (a command that runs the rest of its arguments, e.g. `prlimit
/// --nofile=64:64 --`), when one is given.
async fn spawn_via(wrapper: &[&str], name: &str, config: &str, stderr: Stdio) -> Child {
    let mut child = command_via(wrapper, &binary(name))
        .arg("-")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(config.as_bytes())
        .await
        .expect("config written");
    drop(stdin);
    child
}

/// A command running `bin`, under `wrapper` when one is given.
fn command_via(wrapper: &[&str], bin: &Path) -> Command {
    match wrapper.split_first() {
        None => Command::new(bin),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
    }
}

/// Reads the first line a child prints on stdout (its readiness line).
async fn ready_line(child: &mut Child, what: &str) -> String {
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} reports its addresses within 60 s"))
        .unwrap_or_else(|e| panic!("{what}'s stdout is readable: {e}"))
        .unwrap_or_else(|| panic!("{what} exited before printing its addresses"))
}

/// `key=value` from a readiness line.
fn field(line: &str, name: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

/// SIGTERM (or SIGKILL) to a child, then its exit status within 15 s.
async fn signal_and_wait(child: &mut Child, signal: &str) -> Option<i32> {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await;
    }
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the process exits within 15 s of the signal")
        .ok()
        .and_then(|s| s.code())
}

/// A running linkerd-proxy and the addresses it printed.
#[derive(Debug)]
pub struct Proxy {
    child: Child,
    pub admin: String,
    /// Router label to the address of its (first) server.
    pub routers: std::collections::BTreeMap<String, String>,
}

impl Proxy {
    /// Starts `linkerd-proxy -` with `config` on standard input and waits
    /// for its `linkerd-proxy listening ...` line.
    pub async fn start(config: &str) -> Proxy {
        Proxy::spawn(config, Stdio::inherit()).await
    }

    /// As [`Proxy::start`], keeping what the proxy logs for
    /// [`Proxy::stop_with_log`].
    pub async fn start_logged(config: &str) -> Proxy {
        Proxy::spawn(config, Stdio::piped()).await
    }

    /// As [`Proxy::start`], run under `wrapper` (see `spawn_via`), e.g.
    /// with a lower descriptor limit.
    pub async fn start_via(wrapper: &[&str], config: &str) -> Proxy {
        let child = spawn_via(wrapper, "linkerd-proxy", config, Stdio::inherit()).await;
        Proxy::ready(child).await
    }

    async fn spawn(config: &str, stderr: Stdio) -> Proxy {
        let child = spawn_with_config("linkerd-proxy", config, stderr).await;
        Proxy::ready(child).await
    }

    /// Waits for the proxy's readiness line and reads its addresses.
    async fn ready(mut child: Child) -> Proxy {
        let line = ready_line(&mut child, "linkerd-proxy").await;
        let admin = field(&line, "admin").unwrap_or_else(|| panic!("no admin= in {line:?}"));
        // A router with several servers is listed once per server: keep
        // the first.
        let mut routers = std::collections::BTreeMap::new();
        for (k, v) in line
            .split_whitespace()
            .skip(2)
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k != "admin")
        {
            routers
                .entry(k.to_string())
                .or_insert_with(|| v.to_string());
        }
        Proxy {
            child,
            admin,
            routers,
        }
    }

    /// The address of the router labelled `label`.
    pub fn router(&self, label: &str) -> &str {
        self.routers
            .get(label)
            .unwrap_or_else(|| panic!("no router {label} in {:?}", self.routers))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) -> Option<i32> {
        signal_and_wait(&mut self.child, "-TERM").await
    }

    /// SIGKILL: the proxy dies without a chance to close anything, as a
    /// crashed or OOM-killed one.
    pub async fn kill(mut self) {
        signal_and_wait(&mut self.child, "-KILL").await;
    }

    /// SIGTERM, then everything the proxy logged (started with
    /// [`Proxy::start_logged`]).
    pub async fn stop_with_log(mut self) -> String {
        stop_with_log(&mut self.child, "linkerd-proxy").await
    }
}

/// A running demo backend (`l5d-demo http|grpc`).
#[derive(Debug)]
pub struct Demo {
    child: Child,
    pub name: String,
    pub addr: std::net::SocketAddr,
}

impl Demo {
    /// Starts `l5d-demo <kind> --name <name>` on a loopback port the OS
    /// picks, with extra arguments.
    pub async fn start(kind: &str, name: &str, extra: &[&str]) -> Demo {
        Demo::start_via(&[], kind, name, "127.0.0.1:0", extra).await
    }

    /// As [`Demo::start`], listening on `listen` (`IP:PORT`, port 0 for
    /// one the OS picks) and run under `wrapper` (see `spawn_via`), e.g.
    /// `ip netns exec NS` for a pod on another node.
    pub async fn start_via(
        wrapper: &[&str],
        kind: &str,
        name: &str,
        listen: &str,
        extra: &[&str],
    ) -> Demo {
        let mut child = command_via(wrapper, &binary("l5d-demo"))
            .args([kind, "--name", name, "--listen", listen])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("l5d-demo starts");
        let line = ready_line(&mut child, "l5d-demo").await;
        let addr = field(&line, "addr")
            .unwrap_or_else(|| panic!("no addr= in {line:?}"))
            .parse()
            .expect("a socket address");
        Demo {
            child,
            name: name.to_string(),
            addr,
        }
    }

    /// The line the fs namer reads for this backend.
    pub fn fs_line(&self) -> String {
        format!("{} {}\n", self.addr.ip(), self.addr.port())
    }

    /// Lists this backend under its name for the fs namer of
    /// [`Namerd::fs_config`]: `dir/disco/<name>`.
    pub fn register(&self, dir: &Path) {
        let disco = dir.join("disco");
        std::fs::create_dir_all(&disco).unwrap();
        std::fs::write(disco.join(&self.name), self.fs_line()).unwrap();
    }

    pub async fn stop(mut self) -> Option<i32> {
        signal_and_wait(&mut self.child, "-TERM").await
    }
}

/// Runs namerctl against `base_url`; returns (exit status, stdout, stderr).
pub async fn namerctl(base_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary("namerctl"))
        .args(args)
        .env("NAMERCTL_BASE_URL", base_url)
        .output()
        .await
        .expect("namerctl runs");
    outcome(&out)
}

/// Runs `curl -sS --max-time 10 ARGS`; returns (exit status, stdout,
/// stderr).
pub async fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    outcome(&out)
}

/// Whether the `openssl` command-line tool runs (the TLS scans use its
/// `s_client`).
pub async fn has_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// True when `openssl` runs; otherwise skips loudly outside CI (false)
/// and fails under `CI=true`.
pub async fn openssl_or_skip() -> bool {
    if has_openssl().await {
        return true;
    }
    skip_or_fail("the openssl command-line tool (apt-get install openssl)");
    false
}

/// Runs `openssl s_client -connect ADDR ARGS` with nothing on standard
/// input (so it closes right after the handshake), within 15 s; returns
/// (exit status, stdout, stderr).
pub async fn s_client(addr: &str, args: &[&str]) -> (i32, String, String) {
    let run = Command::new("openssl")
        .args(["s_client", "-connect", addr])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("openssl s_client ends within 15 s")
        .expect("openssl runs");
    outcome(&out)
}

/// `s_client` offering only `version` (`-tls1`, `-tls1_1`, `-tls1_2`,
/// `-tls1_3`) with `args`; whether the handshake succeeded, and the output.
/// OpenSSL 3 will not even offer TLS 1.0 or 1.1 at its default security
/// level, so for those it is lowered: a refusal is then the server's.
pub async fn s_client_version(addr: &str, version: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec![version];
    if matches!(version, "-tls1" | "-tls1_1") {
        all.extend(["-cipher", "DEFAULT@SECLEVEL=0"]);
    }
    all.extend_from_slice(args);
    let (code, out, err) = s_client(addr, &all).await;
    (code == 0, format!("{out}{err}"))
}

/// Waits up to `bound` for the other end to close `stream` (end of stream
/// or an error), reading and dropping whatever arrives; when it did.
pub async fn closed_by_peer(
    stream: &mut tokio::net::TcpStream,
    bound: Duration,
) -> Option<std::time::Instant> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return std::time::Instant::now(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()
}

/// A finished process as (exit status, stdout, stderr); -1 for a signal.
pub fn outcome(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Whether `python3` can import `module`.
pub async fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Sets a fault on an `l5d-demo` backend in another process (see
/// [`Demo`]): `/fault?QUERY` over plain HTTP/1.1 on its address, e.g.
/// `demo_fault(addr, "status=503&fraction=0.2")`; `""` clears it. Returns
/// the fault in force as the backend describes it (`fault status=503
/// fraction=0.2`); panics with the answer unless it is a 200. Blocking, for
/// at most 10 s: the backend answers at once.
pub fn demo_fault(addr: std::net::SocketAddr, query: &str) -> String {
    let path = match query.trim_start_matches('?') {
        "" => "/fault".to_string(),
        query => format!("/fault?{query}"),
    };
    let (status, body) = demo_get(addr, &path);
    assert_eq!(status, 200, "{path} on l5d-demo {addr}: {body}");
    body
}

/// The request log of an `l5d-demo` backend in another process, started
/// with `--log-requests`: `GET /requests`, a JSON array of the requests it
/// answered, oldest first. Blocking, as [`demo_fault`].
pub fn demo_requests(addr: std::net::SocketAddr) -> serde_json::Value {
    let (status, body) = demo_get(addr, "/requests");
    assert_eq!(status, 200, "/requests on l5d-demo {addr}: {body}");
    serde_json::from_str(&body).expect("/requests answers JSON")
}

/// Empties the request log of an `l5d-demo` backend (`/requests?clear`).
pub fn demo_requests_clear(addr: std::net::SocketAddr) {
    let (status, body) = demo_get(addr, "/requests?clear");
    assert_eq!(status, 200, "/requests?clear on l5d-demo {addr}: {body}");
}

/// `GET PATH` over HTTP/1.1 with `connection: close`; the status and body.
fn demo_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let bound = Duration::from_secs(10);
    let mut conn = std::net::TcpStream::connect_timeout(&addr, bound)
        .unwrap_or_else(|e| panic!("l5d-demo {addr}: {e}"));
    conn.set_read_timeout(Some(bound)).expect("a read timeout");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .and_then(|()| conn.flush())
    .unwrap_or_else(|e| panic!("l5d-demo {addr}: {e}"));
    let mut rsp = String::new();
    conn.read_to_string(&mut rsp)
        .unwrap_or_else(|e| panic!("l5d-demo {addr}{path}: {e}"));
    let (head, body) = rsp.split_once("\r\n\r\n").unwrap_or((&rsp, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status = status.unwrap_or_else(|| panic!("l5d-demo {addr}{path}: not HTTP: {rsp:?}"));
    (status, body.to_string())
}
