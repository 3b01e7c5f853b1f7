//! The global namer: names under `/$` that need no configuration.
//!
//! Finagle loads `/$/<class>/...` namers by reflection; we have a fixed table of
//! the ones Linkerd 1.x users write in dtabs. None of them does I/O here:
//! `/$/inet` names bind to an id, and turning that id into addresses (DNS) is
//! the resolver's job.

use std::sync::Arc;

use crate::name::{Activity, Bound, Name, NameError};
use crate::path::{Path, PathBuilder};
use crate::tree::NameTree;

/// Looks `path` up in the global namespace. Paths outside `/$` are `~`.
pub fn lookup(path: &Path) -> Activity<NameTree<Name>> {
    let mut labels = path.labels();
    if labels.next() != Some(b"$") {
        return Activity::Ok(NameTree::Neg);
    }
    let Some(kind) = labels.next() else {
        return Activity::Ok(NameTree::Neg);
    };
    let rest = path.drop(2);
    match kind {
        b"inet" | b"fixedinet" => match inet(path, &rest) {
            Some(bound) => Activity::Ok(NameTree::Leaf(Name::Bound(bound))),
            // Finagle falls through to loading a class named `inet`.
            None => unknown(kind, path),
        },
        b"fail" => Activity::Ok(NameTree::Fail),
        b"nil" => Activity::Ok(NameTree::Empty),
        b"io.buoyant.rinet" => Activity::Ok(match rest.len() {
            0 | 1 => NameTree::Neg,
            _ => NameTree::Leaf(Name::Bound(Bound::new(path.take(4), rest.drop(2)))),
        }),
        _ => match rewriter(kind) {
            Some(rewrite) => Activity::Ok(match rewrite(&rest) {
                Some(p) => NameTree::Leaf(Name::Path(p)),
                None => NameTree::Neg,
            }),
            None => unknown(kind, path),
        },
    }
}

fn unknown(kind: &[u8], path: &Path) -> Activity<NameTree<Name>> {
    Activity::Failed(NameError::UnknownNamer {
        namer: Arc::from(String::from_utf8_lossy(kind)),
        path: path.clone(),
    })
}

/// `/$/inet/<host>/<port>/rest` and `/$/inet/<port>/rest`, host first.
fn inet(path: &Path, rest: &Path) -> Option<Bound> {
    let mut labels = rest.labels();
    let first = labels.next()?;
    if labels.next().is_some_and(is_java_int) {
        return Some(Bound::new(path.take(4), rest.drop(2)));
    }
    is_java_int(first).then(|| Bound::new(path.take(3), rest.drop(1)))
}

/// `Integer.parseInt` on ASCII: an optional sign and digits within `i32`.
fn is_java_int(label: &[u8]) -> bool {
    std::str::from_utf8(label).is_ok_and(|s| {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i32>().is_ok()
    })
}

type Rewrite = fn(&Path) -> Option<Path>;

/// Linkerd's rewriting namers, which turn one path into another that is then
/// looked up through the dtab again.
fn rewriter(kind: &[u8]) -> Option<Rewrite> {
    Some(match kind {
        b"io.buoyant.hostportPfx" => |p| host_port(p, false),
        b"io.buoyant.porthostPfx" => |p| host_port(p, true),
        b"io.buoyant.http.anyMethod" => {
            |p| p.first_str().filter(|m| is_method(m)).map(|_| p.drop(1))
        }
        b"io.buoyant.http.anyMethodPfx" => |p| {
            let [pfx, m] = utf8_labels(p)?;
            is_method(m).then(|| with_labels(&[pfx], &p.drop(2)))
        },
        b"io.buoyant.http.anyHost" => |p| p.first_str().filter(|h| is_host(h)).map(|_| p.drop(1)),
        b"io.buoyant.http.anyHostPfx" => |p| {
            let [pfx, host] = utf8_labels(p)?;
            is_host(host).then(|| with_labels(&[pfx], &p.drop(2)))
        },
        b"io.buoyant.http.subdomainOf" => |p| {
            let [domain, host] = utf8_labels(p)?;
            let sub = subdomain(domain, host)?;
            Some(with_labels(&[sub], &p.drop(2)))
        },
        b"io.buoyant.http.subdomainOfPfx" => |p| {
            let [domain, pfx, host] = utf8_labels(p)?;
            let sub = subdomain(domain, host)?;
            Some(with_labels(&[pfx, sub], &p.drop(3)))
        },
        b"io.buoyant.http.domainToPath" => |p| {
            let [host] = utf8_labels(p)?;
            Some(with_labels(&reversed_domain(host)?, &p.drop(1)))
        },
        b"io.buoyant.http.domainToPathPfx" => |p| {
            let [pfx, host] = utf8_labels(p)?;
            let mut labels = vec![pfx];
            labels.extend(reversed_domain(host)?);
            Some(with_labels(&labels, &p.drop(2)))
        },
        _ => return None,
    })
}

/// The first `N` labels as UTF-8, if the path has that many.
fn utf8_labels<const N: usize>(p: &Path) -> Option<[&str; N]> {
    let mut labels = p.labels();
    let mut out = [""; N];
    for slot in &mut out {
        *slot = std::str::from_utf8(labels.next()?).ok()?;
    }
    Some(out)
}

fn with_labels(labels: &[&str], rest: &Path) -> Path {
    let mut b = PathBuilder::default();
    for l in labels {
        b.push(l.as_bytes())
            .expect("rewriters only produce non-empty labels");
    }
    b.push_path(rest);
    b.finish()
}

/// `/pfx/host:port/rest` to `/pfx/host/port/rest` (or `/pfx/port/host/rest`).
/// The port must be a DNS label (`[a-z0-9][-a-z0-9]*`, at most 63 bytes).
fn host_port(p: &Path, port_first: bool) -> Option<Path> {
    let [pfx, hp] = utf8_labels(p)?;
    let parts = java_split(hp, ':');
    let [host, port] = parts.as_slice() else {
        return None;
    };
    let dns_label = port.len() <= 63
        && port
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && port
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !dns_label || host.is_empty() {
        return None;
    }
    let labels = if port_first {
        [pfx, port, host]
    } else {
        [pfx, host, port]
    };
    Some(with_labels(&labels, &p.drop(2)))
}

/// Java's `String.split` with a literal separator: trailing empty strings are
/// removed.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// `foo.buoyant.io` to `[io, buoyant, foo]`; `None` when it is not a host or
/// would leave an empty label.
fn reversed_domain(host: &str) -> Option<Vec<&str>> {
    if !is_host(host) {
        return None;
    }
    let mut parts = java_split(host, '.');
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    parts.reverse();
    Some(parts)
}

/// Linkerd's coarse host pattern `^[A-Za-z0-9.:_-]+$`.
fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-'))
}

fn is_method(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// The part of `host` (port dropped) before `.domain`, if not empty.
fn subdomain<'a>(domain: &str, host: &'a str) -> Option<&'a str> {
    if !is_host(domain) || !is_host(host) {
        return None;
    }
    let host = match host.find(':') {
        Some(i) if i > 0 => &host[..i],
        _ => host,
    };
    let sub = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!sub.is_empty()).then_some(sub)
}
