//! One namerd, one proxy with trusting, edge (`clearContext`) and open
//! (`allowOverrideToAddresses: true`) routers, a `world` backend, and a
//! listener that counts every connection made to it: the target no probe
//! may reach.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, curl};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const DTAB: &str = "/svc => /#/io.l5d.fs;\n";

pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) namerd: Namerd,
    pub(crate) proxy: Proxy,
    pub(crate) counter: Counter,
    world: Demo,
}

impl Setup {
    pub(crate) async fn start() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        let world = Demo::start("http", "world", &[]).await;
        std::fs::write(disco.join("world"), world.fs_line()).unwrap();
        let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
        namerd.create_dtab(dir.path(), "internal", DTAB).await;
        let proxy = Proxy::start(&proxy_config(&namerd.mesh)).await;
        Setup {
            dir,
            namerd,
            proxy,
            counter: Counter::start().await,
            world,
        }
    }

    /// Names `name` in the fs namer's directory as `addr`, and waits until
    /// the router `label` routes it (the namer sees the file within
    /// milliseconds; 10 s is a generous bound).
    pub(crate) async fn name(&self, name: &str, addr: &str, label: &str) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let file: PathBuf = self.dir.path().join("disco").join(name);
        std::fs::write(&file, format!("{ip} {port}\n")).unwrap();
        let since = Instant::now();
        loop {
            let h2 = label.starts_with("h2");
            let url = format!("http://{name}/");
            let (status, _) = status(&self.proxy, label, h2, &url, &[]).await;
            if status != 502 {
                return;
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "{label} does not route {name} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn stop(self) {
        assert_eq!(self.proxy.stop().await, Some(0), "the proxy exits cleanly");
        self.namerd.stop().await;
        self.world.stop().await;
    }
}

fn proxy_config(mesh: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    let interpreter = format!(
        "{{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal, retry: {{baseSeconds: 1, maxSeconds: 2}}}}"
    );
    let routers = [
        ("http", "http", "{port: 0}", ""),
        ("h2", "h2", "{port: 0}", ""),
        (
            "h2",
            "grpc",
            "{port: 0}",
            "identifier: {kind: io.l5d.header.path, segments: 1}",
        ),
        ("http", "http-edge", "{port: 0, clearContext: true}", ""),
        ("h2", "h2-edge", "{port: 0, clearContext: true}", ""),
        (
            "http",
            "http-open",
            "{port: 0, allowOverrideToAddresses: true}",
            "",
        ),
    ];
    let mut config = "admin: {port: 0}\nrouters:\n".to_string();
    for (protocol, label, server, extra) in routers {
        config.push_str(&format!(
            "- protocol: {protocol}\n  label: {label}\n  servers: [{server}]\n  interpreter: {interpreter}\n  {extra}\n"
        ));
    }
    config
}

/// A request with curl to `url` (`http://<host>/<path>`) through the
/// router `label` (over h2 with prior knowledge when `h2`), with `extra`
/// arguments: the status and the `l5d-err` header (empty if none).
pub(crate) async fn status(
    proxy: &Proxy,
    label: &str,
    h2: bool,
    url: &str,
    extra: &[&str],
) -> (u16, String) {
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("an http:// URL");
    let connect_to = format!("{host}:80:{}", proxy.router(label));
    let mut args = vec!["-o", "/dev/null", "-D", "-", "--connect-to", &connect_to];
    if h2 {
        args.push("--http2-prior-knowledge");
    }
    args.extend(extra);
    args.push(url);
    let (code, out, err) = curl(&args).await;
    assert_eq!(code, 0, "curl {args:?}: {err}");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let l5d_err = out
        .lines()
        .find_map(|l| l.strip_prefix("l5d-err: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    (status, l5d_err)
}

/// A listener that counts the connections made to it and answers each
/// with a small HTTP/1.1 response.
pub(crate) struct Counter {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Counter {
    async fn start() -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ncounted\n")
                        .await;
                });
            }
        });
        Counter { addr, accepted }
    }

    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
