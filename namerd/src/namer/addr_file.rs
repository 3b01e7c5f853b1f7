//! The format of an `io.l5d.fs` address file, as Linkerd's `WatchingNamer`
//! reads it: one address per line, `host port` or `host port * weight`,
//! fields separated by whitespace, `#` starting a comment, blank lines
//! ignored. Hosts are IP literals or names resolved when the file is read.
//!
//! Errors say which line and what was expected, never what the line holds:
//! they reach logs, admin pages and, through a failed address set, the
//! proxies' `l5d-err`, and the file may not be what the operator meant to
//! publish (a secret linked into the directory by mistake).
//!
//! Pure parsing plus one call to a [`HostResolver`]; no file system access.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use l5d_dtab::Endpoint;

use super::inet::{HostResolver, ip_literal};

/// One address line of a file.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AddrLine {
    /// 1-based, for error messages.
    pub(super) line: usize,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) weight: Option<f64>,
}

/// Why a file could not be turned into addresses; each names its line and
/// what was expected, without the line's content.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(super) enum AddrFileError {
    #[error(
        "line {line}: malformed address: {fields} fields, expected `host port` or `host port * weight`"
    )]
    Malformed { line: usize, fields: usize },
    #[error("line {line}: the port (second field) is not a number in 1-65535")]
    Port { line: usize },
    #[error("line {line}: the weight (fourth field) is not a finite non-negative number")]
    Weight { line: usize },
    /// `kind` is the resolver's error kind only: its message may repeat
    /// the host name.
    #[error("line {line}: cannot resolve the host (first field): {kind}")]
    Resolve {
        line: usize,
        kind: std::io::ErrorKind,
    },
}

/// The address lines of `text`; the first bad line fails the whole file,
/// as in Linkerd (which then fails the address; the namer keeps the last
/// good one instead).
pub(super) fn parse(text: &str) -> Result<Vec<AddrLine>, AddrFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let (host, port, weight) = match fields.as_slice() {
            [host, port] => (*host, *port, None),
            [host, port, "*", weight] => (*host, *port, Some(*weight)),
            _ => {
                return Err(AddrFileError::Malformed {
                    line,
                    fields: fields.len(),
                });
            }
        };
        let port = parse_port(port).ok_or(AddrFileError::Port { line })?;
        let weight = weight
            .map(|w| {
                w.parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or(AddrFileError::Weight { line })
            })
            .transpose()?;
        out.push(AddrLine {
            line,
            host: host.to_string(),
            port,
            weight,
        });
    }
    Ok(out)
}

/// Linkerd's `PortNum`: an integer (optionally signed) in 1-65535.
fn parse_port(s: &str) -> Option<u16> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|p| *p > 0)
}

/// Whether any line names a host that needs DNS (so re-reading an
/// unchanged file may still give a different answer).
pub(super) fn has_hostnames(lines: &[AddrLine]) -> bool {
    lines.iter().any(|l| ip_literal(&l.host).is_none())
}

/// The endpoints of `lines`, resolving each distinct host name once. A
/// name resolving to several IPs gives one endpoint per IP.
pub(super) async fn endpoints(
    lines: &[AddrLine],
    resolver: &HostResolver,
) -> Result<Vec<Endpoint>, AddrFileError> {
    let mut resolved: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        if !resolved.contains_key(l.host.as_str()) {
            let ips = resolver
                .lookup(&l.host)
                .await
                .map_err(|e| AddrFileError::Resolve {
                    line: l.line,
                    kind: e.kind(),
                })?;
            resolved.insert(&l.host, ips);
        }
        for ip in &resolved[l.host.as_str()] {
            let mut endpoint = Endpoint::new(SocketAddr::new(*ip, l.port));
            endpoint.weight = l.weight;
            out.push(endpoint);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_weights() {
        let text =
            "# services\n10.0.0.1 8080\n\n  10.0.0.2\t8081 * 0.5  # canary\r\nhost.example 80\n";
        let lines = parse(text).unwrap();
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.line, l.host.as_str(), l.port, l.weight))
            .collect();
        assert_eq!(
            got,
            [
                (2, "10.0.0.1", 8080, None),
                (4, "10.0.0.2", 8081, Some(0.5)),
                (5, "host.example", 80, None),
            ]
        );
        assert!(has_hostnames(&lines));
        assert!(!has_hostnames(&lines[..2]));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let cases = [
            ("10.0.0.1", "line 1: malformed address: 1 fields"),
            ("\n10.0.0.1 80 90", "line 2: malformed address: 3 fields"),
            ("10.0.0.1 80 * ", "line 1: malformed address: 3 fields"),
            ("10.0.0.1 0", "line 1: the port (second field) is not"),
            ("10.0.0.1 65536", "line 1: the port"),
            ("10.0.0.1 http", "line 1: the port"),
            ("10.0.0.1 80 * x", "line 1: the weight (fourth field)"),
            ("10.0.0.1 80 * -1", "line 1: the weight"),
            ("10.0.0.1 80 * NaN", "line 1: the weight"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: got {err:?}");
            // Nothing of the line comes back, only its number and shape.
            for field in text.split_whitespace().filter(|f| *f != "*") {
                assert!(!err.contains(field), "{text:?}: {err:?} repeats {field}");
            }
        }
        assert_eq!(parse("10.0.0.1 +80").unwrap()[0].port, 80);
    }
}
