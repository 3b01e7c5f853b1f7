//! `GET /api/1/dtabs/<ns>/history` over a real loopback socket on SQLite:
//! bounded responses for large dtabs (the 20 writes of 936 KB that
//! answered 31 MB), and `Link` pagination that visits every version once.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use namerd::testing::{TestNamerd, start_sqlite};
use tempfile::TempDir;

/// The page size cap of the API (`api/history.rs`).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

struct Api {
    namerd: TestNamerd,
    client: Client<HttpConnector, Full<Bytes>>,
    _dir: TempDir,
}

struct Reply {
    status: StatusCode,
    link: Option<String>,
    etag: Option<String>,
    body: Bytes,
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        Api {
            namerd: start_sqlite(dir.path()).await,
            client: Client::builder(TokioExecutor::new()).build_http(),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.namerd.base_url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let rsp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let header = |name| {
            rsp.headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (link, etag) = (header("link"), header("etag"));
        let status = rsp.status();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            link,
            etag,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], String::new()).await
    }

    /// Writes `count` versions of `ns` (dtab text), each with `dtab(i)`.
    async fn write(&self, ns: &str, count: usize, dtab: impl Fn(usize) -> String) {
        let path = format!("/api/1/dtabs/{ns}");
        let headers = [("content-type", "application/dtab")];
        let r = self.send(Method::POST, &path, &headers, dtab(1)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        for i in 2..=count {
            let r = self.send(Method::PUT, &path, &headers, dtab(i)).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "write {i}");
            assert!(r.etag.is_some());
        }
    }

    /// Follows `Link: rel="next"` from `first`: every page's versions
    /// (oldest first within a page) and body size, newest page first.
    async fn walk(&self, first: &str) -> Vec<(Vec<String>, usize)> {
        let mut pages = Vec::new();
        let mut next = Some(first.to_string());
        while let Some(path) = next {
            let r = self.get(&path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            let page: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
            let versions = page
                .iter()
                .map(|e| e["version"].as_str().unwrap().to_string())
                .collect();
            pages.push((versions, r.body.len()));
            next = r.link.map(|link| next_path(&link));
            assert!(pages.len() <= 1_000, "pagination ends");
        }
        pages
    }
}

/// The target of `<...>; rel="next"`.
fn next_path(link: &str) -> String {
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let start = link.find('<').unwrap() + 1;
    let end = link.find('>').unwrap();
    link[start..end].to_string()
}

/// A dtab of about `bytes` bytes of text, distinct per `i`.
fn large_dtab(i: usize, bytes: usize) -> String {
    let dentry = |n: usize| format!("/svc/name{n:06}=>/#/io.l5d.fs/v{i}x{n:06};");
    let per = dentry(0).len();
    (0..bytes / per).map(dentry).collect()
}

/// The version counters of the SQL stores, as `ETag`s: 1 is `AAAAAAAAAAE=`.
fn etag(n: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(n.to_be_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_large_versions_answer_bounded_pages() {
    let api = Api::start().await;
    let text_bytes = 936 * 1024;
    api.write("big", 20, |i| large_dtab(i, text_bytes)).await;
    let r = api.get("/api/1/dtabs/big/history").await;
    assert_eq!(r.status, StatusCode::OK);
    let first: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    eprintln!(
        "20 versions of {text_bytes} bytes of dtab text: first history page {} bytes with {} versions (cap {MAX_PAGE_BYTES})",
        r.body.len(),
        first.len()
    );
    assert!(r.body.len() <= MAX_PAGE_BYTES, "{} bytes", r.body.len());
    assert!(first.len() < 20, "the page was cut by its size");
    assert_eq!(
        first.last().unwrap()["version"],
        etag(20),
        "the newest page, oldest first"
    );
    assert!(r.link.is_some(), "older versions are linked");
    let pages = api.walk("/api/1/dtabs/big/history").await;
    let mut all: Vec<String> = Vec::new();
    for (versions, bytes) in pages.iter().rev() {
        assert!(*bytes <= MAX_PAGE_BYTES, "{bytes} bytes");
        all.extend(versions.iter().cloned());
    }
    let want: Vec<String> = (1..=20).map(etag).collect();
    assert_eq!(all, want, "every version once, oldest first");
    let largest = pages.iter().map(|(_, b)| *b).max().unwrap();
    eprintln!(
        "{} pages, the largest {largest} bytes, {} bytes in all",
        pages.len(),
        pages.iter().map(|(_, b)| *b).sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_links_over_every_version_once() {
    let api = Api::start().await;
    api.write("paged", 250, |i| format!("/svc=>/v{i}")).await;
    // No parameters: the newest 100, oldest first, as the route's old shape.
    let pages = api.walk("/api/1/dtabs/paged/history").await;
    let sizes: Vec<usize> = pages.iter().map(|(v, _)| v.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(pages[0].0.first(), Some(&etag(151)));
    assert_eq!(pages[0].0.last(), Some(&etag(250)));
    let mut all: Vec<String> = pages.into_iter().rev().flat_map(|(v, _)| v).collect();
    let want: Vec<String> = (1..=250).map(etag).collect();
    assert_eq!(all, want);
    // Another page size, and a cursor sent with its `+`, `/` and `=`
    // percent-encoded (as the links do).
    all = api
        .walk("/api/1/dtabs/paged/history?limit=7")
        .await
        .into_iter()
        .rev()
        .flat_map(|(v, _)| v)
        .collect();
    assert_eq!(all, want);
    let r = api
        .get("/api/1/dtabs/paged/history?limit=2&before=AAAAAAAAAAM%3D")
        .await;
    let page: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    let got: Vec<&str> = page
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(got, [etag(1), etag(2)]);
    assert_eq!(r.link, None, "nothing older");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_page_parameters_are_400() {
    let api = Api::start().await;
    api.write("p", 1, |_| "/a=>/b".to_string()).await;
    for query in ["limit=0", "limit=1001", "limit=x", "before=%25%25"] {
        let r = api.get(&format!("/api/1/dtabs/p/history?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
    }
    let r = api.get("/api/1/dtabs/absent/history").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
