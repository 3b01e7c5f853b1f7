//! The namerd HTTP API client: one HTTP/1.1 request per call, each bounded
//! by a timeout, with the bearer token if one was given, and the mapping of
//! namerd's status codes to [`Error`]s (401, 403, 404, 409, 410, 412 and the
//! rest). `http://` goes through hyper-util's legacy client; `https://`
//! dials a connection per request with `l5d-runtime`'s TLS client
//! (`--ca-cert`, `--cert`, `--key`), which is all a command of one or two
//! requests needs.
//!
//! Versions are sent and read verbatim (`If-Match` / `ETag`, base64, no
//! quotes), as namerd expects.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, LINK};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use l5d_runtime::tls::{ClientAuthConfig, ClientTls, ClientTlsConfig, TlsError};

use crate::api::{Dentry, HistoryEntry};
use crate::cli::TlsFiles;
use crate::config::BaseUrl;
use crate::error::Error;
use crate::history;
use crate::input::CONTENT_TYPE_JSON;
use crate::token::Token;

/// Responses larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// History pages followed at most: a namerd keeps 1,000 versions by
/// default, and pages have at least one; more means links in a loop.
const MAX_HISTORY_PAGES: usize = 10_000;
/// How much of an error body is quoted in an error message.
const MAX_DETAIL_CHARS: usize = 2000;

/// A dtab body to send and its media type.
#[derive(Clone, Debug)]
pub struct Payload {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// A dtab as read from namerd, with its version (`ETag`, empty if absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub version: String,
    pub dtab: Vec<Dentry>,
}

/// What came back from namerd.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    etag: Option<String>,
    /// The `Link` header (history pages).
    link: Option<String>,
    body: Bytes,
}

#[derive(Debug)]
pub struct NamerdClient {
    transport: Transport,
    base: BaseUrl,
    timeout: Duration,
    token: Option<Token>,
}

#[derive(Debug)]
enum Transport {
    Plain(Box<Client<HttpConnector, Full<Bytes>>>),
    Tls(ClientTls),
}

// === impl NamerdClient ===

impl NamerdClient {
    /// A client of `base`; for `https://`, verifying namerd with
    /// `tls.ca_cert` and presenting `tls.cert` if given. A file that cannot
    /// be used is an error naming its flag, the file and the reason.
    pub fn new(base: BaseUrl, timeout: Duration, tls: &TlsFiles) -> Result<Self, Error> {
        let transport = if base.is_https() {
            Transport::Tls(client_tls(tls)?)
        } else {
            Transport::Plain(Box::new(Client::builder(TokioExecutor::new()).build_http()))
        };
        Ok(NamerdClient {
            transport,
            base,
            timeout,
            token: None,
        })
    }

    /// Sends `token` with every request.
    pub fn with_token(self, token: Option<Token>) -> Self {
        NamerdClient { token, ..self }
    }

    /// `GET /api/1/dtabs`: the namespace names.
    pub async fn list(&self) -> Result<Vec<String>, Error> {
        let reply = check(self.send(Method::GET, &[], None, None).await?)?;
        decode(&reply.body, "the namespace list")
    }

    /// `GET /api/1/dtabs/<name>` as JSON.
    pub async fn get(&self, name: &str) -> Result<Fetched, Error> {
        let reply = check(self.send(Method::GET, &[name], None, None).await?)?;
        Ok(Fetched {
            version: reply.etag.unwrap_or_default(),
            dtab: decode(&reply.body, &format!("GET of dtab {name}"))?,
        })
    }

    /// The current version of a dtab; `None` if it does not exist.
    pub async fn current_version(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name).await {
            Ok(fetched) if fetched.version.is_empty() => Err(Error::MissingVersion {
                name: name.to_string(),
            }),
            Ok(fetched) => Ok(Some(fetched.version)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/1/dtabs/<name>`: create only if absent (409 → conflict).
    pub async fn create(&self, name: &str, payload: Payload) -> Result<(), Error> {
        let reply = self
            .send(Method::POST, &[name], None, Some(payload))
            .await?;
        if reply.status == StatusCode::CONFLICT {
            let current = match reply.etag {
                Some(etag) => Some(etag),
                None => self.current_version(name).await.ok().flatten(),
            };
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                current,
            });
        }
        check(reply).map(drop)
    }

    /// `PUT /api/1/dtabs/<name>`, compare-and-set when `if_match` is given
    /// (412 → conflict). Returns the new version if namerd sent one.
    pub async fn update(
        &self,
        name: &str,
        payload: Payload,
        if_match: Option<&str>,
    ) -> Result<Option<String>, Error> {
        self.update_noted(name, payload, if_match, None).await
    }

    /// [`update`](Self::update), declaring `note` after the operator's name
    /// in `l5d-author`, which namerd records in the history (the canary's
    /// marker).
    pub async fn update_noted(
        &self,
        name: &str,
        payload: Payload,
        if_match: Option<&str>,
        note: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let uri = self.base.dtabs_uri(&[name]);
        let reply = self
            .send_noted(Method::PUT, uri, if_match, Some(payload), note)
            .await?;
        if reply.status == StatusCode::PRECONDITION_FAILED {
            let current = match reply.etag {
                Some(etag) => Some(etag),
                None => self.current_version(name).await?,
            };
            return Err(Error::Conflict {
                name: name.to_string(),
                expected: if_match.unwrap_or("(none)").to_string(),
                current,
            });
        }
        Ok(check(reply)?.etag)
    }

    /// `DELETE /api/1/dtabs/<name>`.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        check(self.send(Method::DELETE, &[name], None, None).await?).map(drop)
    }

    /// `GET /api/1/dtabs/<name>/history`, following namerd's `Link`s to
    /// every page: one array as namerd sent it (for `--json`, so fields
    /// this version does not know survive, in namerd's order) and its
    /// entries, oldest first.
    pub async fn history(&self, name: &str) -> Result<(Bytes, Vec<HistoryEntry>), Error> {
        let segments = [name, "history"];
        let what = format!("the history of dtab {name}");
        let bad = |message: String| Error::BadResponse {
            what: what.clone(),
            message,
        };
        let mut uri = self.base.dtabs_uri(&segments);
        let mut pages = Vec::new();
        loop {
            let reply = check(self.send_to(Method::GET, uri, None, None).await?)?;
            let entries = decode(&reply.body, &what)?;
            let next = reply.link.as_deref().and_then(history::next_query);
            let next = next
                .map(|query| {
                    self.base
                        .dtabs_uri_with_query(&segments, query)
                        .ok_or_else(|| bad(format!("invalid next page link {query:?}")))
                })
                .transpose()?;
            pages.push((reply.body, entries));
            match next {
                None => return Ok(history::join(pages)),
                Some(_) if pages.len() >= MAX_HISTORY_PAGES => {
                    return Err(bad(format!("more than {MAX_HISTORY_PAGES} pages")));
                }
                Some(next) => uri = next,
            }
        }
    }

    /// `GET /api/1/dtabs/<name>/history/<version>`: the dtab as of a
    /// version (404 unknown version, 410 a deletion).
    pub async fn version(&self, name: &str, version: &str) -> Result<Vec<Dentry>, Error> {
        check_version(version)?;
        let reply = self
            .send(Method::GET, &[name, "history", version], None, None)
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Err(Error::UnknownVersion {
                name: name.to_string(),
                version: version.to_string(),
            }),
            StatusCode::GONE => Err(Error::VersionIsDeletion {
                name: name.to_string(),
                version: version.to_string(),
            }),
            _ => {
                let reply = check(reply)?;
                decode(&reply.body, &format!("version {version} of dtab {name}"))
            }
        }
    }

    /// `POST /api/1/dtabs/<name>/dry-run`: what writing `payload` would
    /// change for the names namerd streams now (nothing is written).
    pub async fn dry_run(&self, name: &str, payload: Payload) -> Result<serde_json::Value, Error> {
        let reply = check(
            self.send(Method::POST, &[name, "dry-run"], None, Some(payload))
                .await?,
        )?;
        decode(&reply.body, &format!("the dry run of dtab {name}"))
    }

    /// `GET /api/1/delegate/<name>?path=<path>&dtab=<local>`: the
    /// delegation trace of `path` through the namespace.
    pub async fn delegate(
        &self,
        name: &str,
        path: &str,
        local: &str,
    ) -> Result<serde_json::Value, Error> {
        let uri = self
            .base
            .api_uri(&["delegate", name], &[("path", path), ("dtab", local)]);
        let reply = check(self.send_to(Method::GET, uri, None, None).await?)?;
        decode(&reply.body, &format!("the delegation of {path} in {name}"))
    }

    /// One request to `<base>/api/1/dtabs/<segments>` under the timeout,
    /// body buffered.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        if_match: Option<&str>,
        payload: Option<Payload>,
    ) -> Result<Reply, Error> {
        let uri = self.base.dtabs_uri(segments);
        self.send_to(method, uri, if_match, payload).await
    }

    async fn send_to(
        &self,
        method: Method,
        uri: http::Uri,
        if_match: Option<&str>,
        payload: Option<Payload>,
    ) -> Result<Reply, Error> {
        self.send_noted(method, uri, if_match, payload, None).await
    }

    async fn send_noted(
        &self,
        method: Method,
        uri: http::Uri,
        if_match: Option<&str>,
        payload: Option<Payload>,
        note: Option<&str>,
    ) -> Result<Reply, Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, CONTENT_TYPE_JSON);
        // namerd records who wrote each version in the dtab's history.
        if let Some(who) = author(note) {
            request = request.header("l5d-author", who);
        }
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.authorization().clone());
        }
        if let Some(version) = if_match {
            let value = HeaderValue::from_str(check_version(version)?)
                .expect("base64 is a valid header value");
            request = request.header(IF_MATCH, value);
        }
        let body = match payload {
            Some(payload) => {
                request = request.header(CONTENT_TYPE, payload.content_type);
                payload.body
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .expect("method, URI and headers are valid");

        let exchange = async {
            let response = self.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| self.unreachable(&*e))?
                .to_bytes();
            let header = |name| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            Ok::<_, Error>(Reply {
                status: parts.status,
                etag: header(ETAG),
                link: header(LINK),
                body,
            })
        };
        let reply = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::Timeout {
                    url: self.base.to_string(),
                    timeout: self.timeout,
                });
            }
        };
        // Whatever the call, these say the same thing.
        match reply.status {
            StatusCode::UNAUTHORIZED => Err(Error::Unauthenticated {
                detail: error_detail(&reply.body),
                token_file: self.token.as_ref().map(|t| t.file().to_path_buf()),
            }),
            StatusCode::FORBIDDEN => Err(Error::Forbidden {
                detail: error_detail(&reply.body),
            }),
            _ => Ok(reply),
        }
    }

    /// Sends one request over the transport.
    async fn request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, Error> {
        let tls = match &self.transport {
            Transport::Plain(http) => {
                return http
                    .request(request)
                    .await
                    .map_err(|e| self.unreachable(&e));
            }
            Transport::Tls(tls) => tls,
        };
        let (host, port) = self.base.host_port();
        let name = tls.server_name(host).map_err(|e| Error::Tls {
            flag: "--base-url",
            reason: e.to_string(),
        })?;
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| self.unreachable(&e))?;
        let stream = tls
            .connector()
            .connect(name, tcp)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(&e))?;
        tokio::spawn(connection);
        // A connection of our own sends the request line as given: make it
        // origin-form with a Host header, as the pooled client does.
        let (mut parts, body) = request.into_parts();
        if let Some(authority) = parts.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(http::header::HOST, host);
        }
        if let Some(path) = parts.uri.path_and_query() {
            parts.uri = http::Uri::from(path.clone());
        }
        sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, error: &(dyn std::error::Error + 'static)) -> Error {
        Error::Unreachable {
            url: self.base.to_string(),
            reason: reason(error),
        }
    }
}

/// The TLS client for `tls`'s files.
fn client_tls(tls: &TlsFiles) -> Result<ClientTls, Error> {
    let Some(ca_cert) = &tls.ca_cert else {
        return Err(Error::Tls {
            flag: "--ca-cert",
            reason: "an https:// namerd needs the CA certificate to verify it with \
                     (--ca-cert or NAMERCTL_CA_CERT)"
                .into(),
        });
    };
    let config = ClientTlsConfig {
        trust_certs: vec![ca_cert.clone()],
        client_auth: match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some(ClientAuthConfig {
                cert_path: cert.clone(),
                key_path: key.clone(),
            }),
            _ => None,
        },
        ..ClientTlsConfig::default()
    };
    ClientTls::new(&config, &[b"http/1.1"]).map_err(|e| Error::Tls {
        flag: flag_of(&e),
        reason: e.to_string(),
    })
}

/// The flag that gave the file a TLS error is about.
fn flag_of(e: &TlsError) -> &'static str {
    match e.field.as_str() {
        "clientAuth.certPath" => "--cert",
        "clientAuth.keyPath" => "--key",
        _ => "--ca-cert",
    }
}

/// Versions are opaque, but on namerd's HTTP API always standard, padded
/// base64; checking that here turns a mistyped version into a clear error
/// instead of a 400 from namerd.
pub fn check_version(version: &str) -> Result<&str, Error> {
    match BASE64.decode(version) {
        Ok(_) => Ok(version),
        Err(_) => Err(Error::InvalidVersion {
            version: version.to_string(),
        }),
    }
}

/// The causes of a transport error, without hyper-util's generic
/// "client error (Connect)" wrapper: e.g. `tcp connect error: Connection
/// refused (os error 111)`.
fn reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// Success is 200, 201 or 204; 404 is the Go tool's not-found error; the
/// rest are unexpected, quoting namerd's explanation.
fn check(reply: Reply) -> Result<Reply, Error> {
    match reply.status {
        StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(reply),
        StatusCode::NOT_FOUND => Err(Error::NotFound),
        status => Err(Error::Unexpected {
            status,
            detail: error_detail(&reply.body),
        }),
    }
}

/// namerd's explanation, whole: a dtab parse error spans several lines
/// (the message, the text, a caret), and cutting it after the first loses
/// the part that says where. Capped, and without control characters other
/// than line breaks and tabs, since it goes to a terminal.
fn error_detail(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut detail: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(MAX_DETAIL_CHARS)
        .collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        detail.push('…');
    }
    Some(detail)
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadResponse {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// The longest `l5d-author` namerd records: it drops a longer one (or one
/// with control characters) and keeps only the caller's address.
pub const MAX_AUTHOR_BYTES: usize = 256;

/// What `l5d-author` declares: the operator's login name, for namerd's
/// history, if it is a plain printable value, followed by `note` if there
/// is one.
pub fn declared_author(note: Option<&str>) -> Option<String> {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_graphic()));
    let text = match (name, note) {
        (Some(name), Some(note)) => format!("{name} {note}"),
        (Some(name), None) => name,
        (None, Some(note)) => note.to_string(),
        (None, None) => return None,
    };
    Some(text)
}

fn author(note: Option<&str>) -> Option<HeaderValue> {
    HeaderValue::from_str(&declared_author(note)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_quoted_whole() {
        let long = "x".repeat(MAX_DETAIL_CHARS + 100);
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"", None),
            (b"\n", None),
            (b"   \nsecond", Some("second")),
            (b"bad dtab: '/a=>\n  ^'\n", Some("bad dtab: '/a=>\n  ^'")),
            (b"Forbidden", Some("Forbidden")),
            (b"a\x1b[31mred\r\tb", Some("a[31mred\tb")),
        ];
        for (body, want) in cases {
            assert_eq!(error_detail(body).as_deref(), *want, "{body:?}");
        }
        let truncated = error_detail(long.as_bytes()).unwrap();
        assert_eq!(truncated.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(truncated.ends_with('…'));
    }

    #[test]
    fn versions_are_base64() {
        for ok in ["AAAAAAAAAAE=", "Zm9v", "AB+/cw==", ""] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["1", "AAAAAAAAAAE", "AAAA AAAA", "# version", "ä"] {
            let err = check_version(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid version"), "{bad}");
        }
    }

    #[test]
    fn statuses() {
        let reply = |code: u16, body: &'static str| Reply {
            status: StatusCode::from_u16(code).unwrap(),
            etag: None,
            link: None,
            body: Bytes::from_static(body.as_bytes()),
        };
        for code in [200, 201, 204] {
            assert!(check(reply(code, "")).is_ok(), "{code}");
        }
        assert!(matches!(check(reply(404, "")), Err(Error::NotFound)));
        let err = check(reply(409, "")).unwrap_err();
        assert_eq!(err.to_string(), "unexpected response: 409 Conflict");
        let err = check(reply(400, "Invalid dtab\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected response: 400 Bad Request: Invalid dtab"
        );
        let err = check(reply(599, "")).unwrap_err();
        assert_eq!(err.to_string(), "unexpected response: 599");
    }
}
