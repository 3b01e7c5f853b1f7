//! Identifiers: how a request becomes a logical name (`/svc/world`).
//!
//! A router tries its identifiers in order; the first that names the
//! request wins, and a request none can name gets a 400.

use http::request::Parts;
use http::uri::Authority;
use http::{HeaderValue, Method, Uri, Version};
use l5d_dtab::{Path, PathBuilder};

use crate::config::{HeaderSource, IdentifierConfig};

/// A request's logical name, and how many leading path segments the
/// forwarded request must lose (`io.l5d.path` with `consume`).
#[derive(Clone, Debug, PartialEq)]
pub struct Identified {
    pub name: Path,
    pub consume: usize,
}

/// The identifiers of one router.
#[derive(Clone, Debug)]
pub struct Identifier {
    prefix: Path,
    kinds: Vec<IdentifierConfig>,
}

impl Identifier {
    pub fn new(prefix: Path, kinds: Vec<IdentifierConfig>) -> Self {
        Identifier { prefix, kinds }
    }

    /// Names the request, or says why none of the identifiers could.
    pub fn identify(&self, req: &Parts) -> Result<Identified, String> {
        let mut why = String::new();
        for kind in &self.kinds {
            match self.one(kind, req) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    if !why.is_empty() {
                        why.push_str("; ");
                    }
                    why.push_str(&e);
                }
            }
        }
        Err(why)
    }

    fn one(&self, kind: &IdentifierConfig, req: &Parts) -> Result<Identified, String> {
        let mut name = PathBuilder::with_capacity(64);
        name.push_path(&self.prefix);
        let mut consume = 0;
        match kind {
            IdentifierConfig::HeaderToken { header } => {
                let value = header_value(header, req)?;
                if value.is_empty() {
                    return Err(format!("{} is empty", describe(header)));
                }
                push(&mut name, value.as_bytes())?;
            }
            IdentifierConfig::MethodAndHost { http_uri_in_dst } => {
                let version = match req.version {
                    Version::HTTP_10 => "1.0",
                    _ => "1.1",
                };
                push(&mut name, version.as_bytes())?;
                push(&mut name, req.method.as_str().as_bytes())?;
                if req.version != Version::HTTP_10 {
                    let host = authority(req).ok_or("no Host header")?;
                    push(&mut name, host.as_bytes())?;
                }
                if *http_uri_in_dst {
                    for segment in segments(req.uri.path()) {
                        push(&mut name, segment.as_bytes())?;
                    }
                }
            }
            IdentifierConfig::Path {
                segments: n,
                consume: c,
            } => {
                let found: Vec<&str> = segments(req.uri.path()).take(*n).collect();
                if found.len() < *n {
                    return Err(format!(
                        "the path {:?} has fewer than {n} segments",
                        req.uri.path()
                    ));
                }
                for segment in found {
                    push(&mut name, segment.as_bytes())?;
                }
                if *c {
                    consume = *n;
                }
            }
            IdentifierConfig::Header { header } => {
                let value = header_value(header, req)?;
                let path = Path::read(value)
                    .map_err(|e| format!("{} is not a path: {e}", describe(header)))?;
                name.push_path(&path);
            }
            IdentifierConfig::HeaderPath {
                header,
                segments: n,
            } => {
                let value = header_value(header, req)?;
                // The query is not part of the name.
                let path = value.split('?').next().unwrap_or_default();
                let found: Vec<&str> = segments(path).collect();
                let take = n.unwrap_or(found.len());
                if found.len() < take || take == 0 {
                    return Err(format!(
                        "{} {path:?} has fewer than {} segments",
                        describe(header),
                        take.max(1)
                    ));
                }
                for segment in &found[..take] {
                    push(&mut name, segment.as_bytes())?;
                }
            }
            IdentifierConfig::Static { path } => name.push_path(path),
            IdentifierConfig::Ingress => {
                let host = authority(req).ok_or("no Host header")?;
                push(&mut name, ingress_host(host).as_bytes())?;
                for segment in segments(req.uri.path()) {
                    push(&mut name, segment.as_bytes())?;
                }
            }
        }
        Ok(Identified {
            name: name.finish(),
            consume,
        })
    }
}

fn push(name: &mut PathBuilder, label: &[u8]) -> Result<(), String> {
    name.push(label)
        .map_err(|_| "an empty path segment".to_string())
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn describe(source: &HeaderSource) -> String {
    match source {
        HeaderSource::Authority => ":authority".to_string(),
        HeaderSource::Path => ":path".to_string(),
        HeaderSource::Named(name) => format!("header {name}"),
    }
}

/// An Ingress rule's view of a request's host: lower case (host names
/// compare so), without the port (rules name hosts, not ports).
fn ingress_host(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        // `[::1]:80` loses its port, `[::1]` keeps its colons.
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    };
    host.to_ascii_lowercase()
}

/// The request's authority: the URI's (HTTP/2, absolute-form HTTP/1.1),
/// else the `Host` header.
pub fn authority(req: &Parts) -> Option<&str> {
    if let Some(a) = req.uri.authority() {
        return Some(a.as_str());
    }
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
}

fn header_value<'a>(source: &HeaderSource, req: &'a Parts) -> Result<&'a str, String> {
    match source {
        HeaderSource::Authority => authority(req).ok_or_else(|| "no :authority".to_string()),
        HeaderSource::Path => Ok(req.uri.path()),
        // `Host` on HTTP/1.1: an absolute-form target (`http_proxy`
        // clients) takes precedence over the header, as RFC 9112 3.2.2
        // requires.
        HeaderSource::Named(name) if name == http::header::HOST => {
            authority(req).ok_or_else(|| "no Host header".to_string())
        }
        HeaderSource::Named(name) => {
            // The last value wins, as Linkerd's h2 identifier.
            let value = req
                .headers
                .get_all(name)
                .iter()
                .next_back()
                .ok_or_else(|| format!("no {name} header"))?;
            value
                .to_str()
                .map_err(|_| format!("header {name} is not visible ASCII"))
        }
    }
}

/// Makes the request's authority unambiguous before anything routes on it,
/// so the proxy and the application cannot read two different ones.
/// RFC 9112 3.2: a request with more than one `Host` line or an invalid
/// one is refused; 3.2.2: an absolute-form target's authority replaces
/// `Host`. RFC 9113 8.3.1: on HTTP/2 a `Host` naming another authority
/// than `:authority` is malformed. Authorities compare case-insensitively
/// (host names are), byte for byte otherwise (`world` is not `world:80`).
/// The messages do not repeat the values, which are the client's.
pub fn check_authority(req: &mut Parts) -> Result<(), String> {
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let host = hosts.next().cloned();
    if hosts.next().is_some() {
        return Err("more than one Host header".to_string());
    }
    let Some(host) = host else {
        return Ok(());
    };
    let valid = host.is_empty()
        || Authority::try_from(host.as_bytes()).is_ok_and(|a| !a.as_str().contains('@'));
    if !valid {
        return Err("the Host header is not a host[:port]".to_string());
    }
    let Some(target) = req.uri.authority() else {
        return Ok(());
    };
    if target
        .as_str()
        .as_bytes()
        .eq_ignore_ascii_case(host.as_bytes())
    {
        return Ok(());
    }
    if req.version == Version::HTTP_2 {
        return Err(":authority and the Host header name different authorities".to_string());
    }
    let value = HeaderValue::from_str(target.as_str())
        .map_err(|_| "the request target's authority is not a header value".to_string())?;
    req.headers.insert(http::header::HOST, value);
    Ok(())
}

/// Removes the first `n` segments from a URI's path, keeping the query.
pub fn consume_segments(uri: &Uri, n: usize) -> Option<Uri> {
    let path = uri.path();
    let mut rest = path;
    for _ in 0..n {
        rest = rest.trim_start_matches('/');
        rest = rest.find('/').map_or("", |i| &rest[i..]);
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    let pq = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// True for the methods whose target is not a path (`CONNECT host:port`,
/// `OPTIONS *`), which no identifier names.
pub fn is_unroutable(method: &Method, uri: &Uri) -> bool {
    method == Method::CONNECT || uri.path() == "*"
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn id(kind: IdentifierConfig) -> Identifier {
        Identifier::new(Path::utf8(["svc"]), vec![kind])
    }

    #[test]
    fn identifiers_name_requests_as_linkerd() {
        let host = HeaderSource::Named(http::header::HOST);
        let cases: Vec<(IdentifierConfig, Parts, Result<&str, ()>)> = vec![
            (
                IdentifierConfig::HeaderToken {
                    header: host.clone(),
                },
                parts("GET", "/x", &[("host", "world")]),
                Ok("/svc/world"),
            ),
            (
                IdentifierConfig::HeaderToken {
                    header: host.clone(),
                },
                parts("GET", "http://world:8080/x", &[("host", "other")]),
                Ok("/svc/world:8080"),
            ),
            (
                IdentifierConfig::HeaderToken { header: host },
                parts("GET", "/x", &[]),
                Err(()),
            ),
            (
                IdentifierConfig::MethodAndHost {
                    http_uri_in_dst: true,
                },
                parts("POST", "/a/b?q", &[("host", "web")]),
                Ok("/svc/1.1/POST/web/a/b"),
            ),
            (
                IdentifierConfig::Path {
                    segments: 2,
                    consume: true,
                },
                parts("GET", "/a/b/c", &[]),
                Ok("/svc/a/b"),
            ),
            (
                IdentifierConfig::Path {
                    segments: 2,
                    consume: false,
                },
                parts("GET", "/a", &[]),
                Err(()),
            ),
            (
                IdentifierConfig::Header {
                    header: HeaderSource::Named(HeaderName::from_static("l5d-name")),
                },
                parts("GET", "/", &[("l5d-name", "/x/y")]),
                Ok("/svc/x/y"),
            ),
            (
                IdentifierConfig::HeaderPath {
                    header: HeaderSource::Path,
                    segments: Some(1),
                },
                parts("POST", "http://h/helloworld.Greeter/SayHello", &[]),
                Ok("/svc/helloworld.Greeter"),
            ),
            (
                IdentifierConfig::HeaderPath {
                    header: HeaderSource::Path,
                    segments: None,
                },
                parts("POST", "/helloworld.Greeter/SayHello", &[]),
                Ok("/svc/helloworld.Greeter/SayHello"),
            ),
            (
                IdentifierConfig::Static {
                    path: Path::utf8(["fixed"]),
                },
                parts("GET", "/", &[]),
                Ok("/svc/fixed"),
            ),
            (
                IdentifierConfig::Ingress,
                parts(
                    "GET",
                    "/Cart//items/?page=2",
                    &[("host", "Shop.Example:8080")],
                ),
                Ok("/svc/shop.example/Cart/items"),
            ),
            (
                IdentifierConfig::Ingress,
                parts("GET", "http://[::1]:80/", &[]),
                // `[::1]`, shown escaped (not path characters).
                Ok("/svc/\\x5b\\x3a\\x3a\\x31\\x5d"),
            ),
            (
                IdentifierConfig::Ingress,
                parts("GET", "/", &[("host", "shop.example")]),
                Ok("/svc/shop.example"),
            ),
            (IdentifierConfig::Ingress, parts("GET", "/x", &[]), Err(())),
        ];
        for (kind, req, want) in cases {
            let got = id(kind.clone()).identify(&req);
            match want {
                Ok(name) => assert_eq!(got.unwrap().name.show(), name, "{kind:?}"),
                Err(()) => assert!(got.is_err(), "{kind:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn authorities_must_be_unambiguous() {
        let h2 = |uri: &str, headers: &[(&str, &str)]| {
            let mut p = parts("GET", uri, headers);
            p.version = Version::HTTP_2;
            p
        };
        let refused = [
            parts("GET", "/", &[("host", "a"), ("host", "a")]),
            parts("GET", "/", &[("host", "a"), ("host", "b")]),
            parts("GET", "/", &[("host", "a b")]),
            parts("GET", "/", &[("host", "user@a")]),
            h2("http://a/", &[("host", "b")]),
            h2("http://a/", &[("host", "a:80")]),
            h2("http://a/", &[("host", "a"), ("host", "a")]),
        ];
        for mut req in refused {
            assert!(check_authority(&mut req).is_err(), "{req:?}");
        }
        let accepted = [
            parts("GET", "/", &[("host", "a:8080")]),
            parts("GET", "/", &[]),
            parts("GET", "/", &[("host", "")]),
            h2("http://a/", &[]),
            h2("http://a/", &[("host", "A")]),
        ];
        for mut req in accepted {
            let before = req.headers.clone();
            check_authority(&mut req).unwrap();
            assert_eq!(req.headers, before);
        }
        // HTTP/1.1 absolute-form: the target wins, and the Host header
        // the application sees says so.
        let mut req = parts("GET", "http://world/x", &[("host", "other")]);
        check_authority(&mut req).unwrap();
        assert_eq!(req.headers["host"], "world");
    }

    #[test]
    fn consumed_segments_leave_the_rest_of_the_target() {
        let uri: Uri = "/a/b/c?x=1".parse().unwrap();
        assert_eq!(consume_segments(&uri, 1).unwrap(), "/b/c?x=1");
        assert_eq!(consume_segments(&uri, 3).unwrap(), "/?x=1");
    }
}
