//! Faults that a test switches on at run time (`/fault?...`) to make a
//! backend misbehave on purpose: a status, a reset before or after the
//! response head, a delay, a gRPC status; for a deterministic fraction of
//! the requests a method and path prefix select.
//!
//! This module only parses and describes a fault and decides which
//! requests it hits; it does no I/O, so each rule is tested on its own.
//! The backends ([`crate::http`], [`crate::grpc`]) carry faults out.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hyper::{Method, StatusCode};

/// One fault, as set by `/fault?status=503&fraction=0.2&...`. At least one
/// of `status`, `reset`, `delay` and `grpc_status` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Answer this status (200..=599) instead of the usual answer.
    pub status: Option<StatusCode>,
    /// Reset the stream or the connection instead of answering.
    pub reset: Option<Reset>,
    /// Wait this long before answering (on top of the backend's delay).
    pub delay: Option<Duration>,
    /// Answer gRPC-shaped requests with this gRPC status (0..=16).
    pub grpc_status: Option<u8>,
    /// Where `grpc_status` goes.
    pub grpc_in: GrpcIn,
    /// Which share of the selected requests the fault hits.
    pub fraction: Fraction,
    /// Only requests with this method are selected.
    pub method: Option<Method>,
    /// Only requests whose path starts with this are selected.
    pub path: Option<String>,
}

/// How a fault resets a request. What goes on the wire is the backend's
/// to document: [`crate::http`] says it for HTTP/1.1 and HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Before any byte of the response.
    BeforeHead,
    /// After the response head (200) and a few bytes of the body.
    AfterHead,
}

/// Where a gRPC status fault puts `grpc-status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GrpcIn {
    /// A response head, no message, then trailers (the usual gRPC shape).
    #[default]
    Trailers,
    /// A Trailers-Only response: `grpc-status` in the head, end of stream.
    Headers,
}

/// A share of requests from 0 to 1, written in decimal with at most nine
/// digits after the point, and kept exact (`num / 10^k`) so that which
/// requests it hits does not depend on floating-point rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    num: u64,
    den: u64,
}

/// A `/fault` parameter that was not understood: what it was and what was
/// expected. The fault in force does not change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadParameter {
    pub name: String,
    pub expected: &'static str,
}

// === impl Fault ===

impl Fault {
    /// Parses a `/fault` query. `Ok(None)` (no parameters, or `clear`)
    /// clears the fault. Values are taken as written: no percent-decoding.
    pub fn from_query(query: Option<&str>) -> Result<Option<Fault>, BadParameter> {
        let query = query.unwrap_or("");
        if query.is_empty() || query == "clear" {
            return Ok(None);
        }
        let mut fault = Fault {
            status: None,
            reset: None,
            delay: None,
            grpc_status: None,
            grpc_in: GrpcIn::default(),
            fraction: Fraction::ALL,
            method: None,
            path: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |expected| BadParameter {
                name: name.to_string(),
                expected,
            };
            match name {
                "status" => {
                    let status = value
                        .parse::<u16>()
                        .ok()
                        .filter(|s| (200..=599).contains(s))
                        .and_then(|s| StatusCode::from_u16(s).ok());
                    fault.status = Some(status.ok_or(bad("an HTTP status from 200 to 599"))?);
                }
                "fraction" => {
                    fault.fraction = value.parse().map_err(|_| {
                        bad("a decimal from 0 to 1, at most 9 digits after the point")
                    })?;
                }
                "reset" => {
                    fault.reset = Some(match value {
                        "before_head" => Reset::BeforeHead,
                        "after_head" => Reset::AfterHead,
                        _ => return Err(bad("before_head or after_head")),
                    });
                }
                "delay_ms" => {
                    let ms = value.parse::<u64>().map_err(|_| bad("milliseconds"))?;
                    fault.delay = Some(Duration::from_millis(ms));
                }
                "grpc_status" => {
                    let code = value.parse::<u8>().ok().filter(|c| *c <= 16);
                    fault.grpc_status = Some(code.ok_or(bad("a gRPC status code from 0 to 16"))?);
                }
                "grpc_in" => {
                    fault.grpc_in = match value {
                        "trailers" => GrpcIn::Trailers,
                        "headers" => GrpcIn::Headers,
                        _ => return Err(bad("trailers or headers")),
                    };
                }
                "method" => {
                    let method = Method::from_bytes(value.as_bytes()).ok();
                    let method = method.filter(|_| !value.is_empty());
                    fault.method = Some(method.ok_or(bad("an HTTP method"))?);
                }
                "path" => {
                    if !value.starts_with('/') {
                        return Err(bad("a path prefix starting with /"));
                    }
                    fault.path = Some(value.to_string());
                }
                "clear" => return Err(bad("no other parameter with clear")),
                _ => {
                    return Err(bad(
                        "one of status, fraction, reset, delay_ms, grpc_status, grpc_in, method, path, clear",
                    ));
                }
            }
        }
        if fault.status.is_none()
            && fault.reset.is_none()
            && fault.delay.is_none()
            && fault.grpc_status.is_none()
        {
            return Err(BadParameter {
                name: query.to_string(),
                expected: "one of status, reset, delay_ms or grpc_status: nothing else is a fault",
            });
        }
        Ok(Some(fault))
    }

    /// Whether a request is one the fault may hit (and so counts for
    /// `fraction`): its method and path match, and some part of the fault
    /// applies to it (`grpc_status` only to gRPC requests).
    pub fn selects(&self, method: &Method, path: &str, grpc: bool) -> bool {
        let applies = self.status.is_some()
            || self.reset.is_some()
            || self.delay.is_some()
            || (grpc && self.grpc_status.is_some());
        applies
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

/// The fault's parameters in a fixed order, as a query would set them:
/// `status=503 fraction=0.2 path=/api`.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(status) = self.status {
            words.push(format!("status={}", status.as_u16()));
        }
        if let Some(reset) = self.reset {
            words.push(format!("reset={reset}"));
        }
        if let Some(delay) = self.delay {
            words.push(format!("delay_ms={}", delay.as_millis()));
        }
        if let Some(code) = self.grpc_status {
            let place = match self.grpc_in {
                GrpcIn::Trailers => "trailers",
                GrpcIn::Headers => "headers",
            };
            words.push(format!("grpc_status={code} grpc_in={place}"));
        }
        words.push(format!("fraction={}", self.fraction));
        if let Some(method) = &self.method {
            words.push(format!("method={method}"));
        }
        if let Some(path) = &self.path {
            words.push(format!("path={path}"));
        }
        f.write_str(&words.join(" "))
    }
}

// === impl Reset ===

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reset::BeforeHead => "before_head",
            Reset::AfterHead => "after_head",
        })
    }
}

// === impl Fraction ===

impl Fraction {
    /// Every request.
    pub const ALL: Fraction = Fraction { num: 1, den: 1 };

    /// Whether the `i`-th selected request (from 0) is hit: iff
    /// `floor((i+1)*F) > floor(i*F)`. This is error diffusion: of the first
    /// `n` requests exactly `floor(n*F)` are hit, spread evenly (0.2 hits
    /// requests 4, 9, 14, ...), so tests can assert exact counts.
    pub fn hits(self, i: u64) -> bool {
        let (num, den, i) = (u128::from(self.num), u128::from(self.den), u128::from(i));
        (i + 1) * num / den > i * num / den
    }
}

impl FromStr for Fraction {
    type Err = ();

    fn from_str(s: &str) -> Result<Fraction, ()> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 9
        {
            return Err(());
        }
        let den = 10u64.pow(u32::try_from(frac.len()).map_err(|_| ())?);
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| ())?
        };
        let frac: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| ())?
        };
        let num = whole
            .checked_mul(den)
            .and_then(|w| w.checked_add(frac))
            .ok_or(())?;
        if num > den {
            return Err(());
        }
        Ok(Fraction { num, den })
    }
}

/// The shortest decimal: `1`, `0.2`, `0.125`, `0`.
impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, rest) = (self.num / self.den, self.num % self.den);
        if rest == 0 {
            return write!(f, "{whole}");
        }
        let width = self.den.ilog10() as usize;
        let frac = format!("{rest:0width$}");
        write!(f, "{whole}.{}", frac.trim_end_matches('0'))
    }
}

// === impl BadParameter ===

impl fmt::Display for BadParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/fault: {}: expected {}", self.name, self.expected)
    }
}

impl std::error::Error for BadParameter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_hit_exactly_floor_n_f_of_the_first_n_spread_evenly() {
        let hits = |f: &str, n: u64| -> Vec<u64> {
            let f: Fraction = f.parse().unwrap();
            (0..n).filter(|&i| f.hits(i)).collect()
        };
        assert_eq!(hits("0.2", 20), [4, 9, 14, 19]);
        assert_eq!(hits("0.5", 6), [1, 3, 5]);
        assert_eq!(hits("1", 3), [0, 1, 2]);
        assert_eq!(hits("0", 100), Vec::<u64>::new());
        assert_eq!(hits("0.25", 8), [3, 7]);
        // Exact where binary floating point is not: 0.1 * 30 hits 3 times.
        assert_eq!(hits("0.1", 30).len(), 3);
        assert_eq!(hits("0.333", 1000).len(), 333);
        assert!("0.2".parse::<Fraction>().unwrap().hits(u64::MAX - 1));
    }

    #[test]
    fn fractions_parse_decimals_from_0_to_1() {
        let cases = [
            ("1", Some("1")),
            ("1.0", Some("1")),
            ("0.20", Some("0.2")),
            (".5", Some("0.5")),
            ("0.000000001", Some("0.000000001")),
            ("0", Some("0")),
            ("1.01", None),
            ("2", None),
            ("0.0000000001", None),
            ("", None),
            (".", None),
            ("-0.5", None),
            ("0.5e1", None),
            ("1/2", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Fraction>().ok().map(|f| f.to_string());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn queries_parse_to_faults_that_print_as_they_were_set() {
        let cases = [
            ("status=503&fraction=0.2", "status=503 fraction=0.2"),
            ("reset=before_head", "reset=before_head fraction=1"),
            (
                "reset=after_head&method=POST&path=/api",
                "reset=after_head fraction=1 method=POST path=/api",
            ),
            ("delay_ms=250&fraction=0.5", "delay_ms=250 fraction=0.5"),
            (
                "grpc_status=14&grpc_in=headers",
                "grpc_status=14 grpc_in=headers fraction=1",
            ),
            (
                "fraction=0.125&grpc_status=0&status=500",
                "status=500 grpc_status=0 grpc_in=trailers fraction=0.125",
            ),
        ];
        for (query, want) in cases {
            let fault = Fault::from_query(Some(query)).unwrap().unwrap();
            assert_eq!(fault.to_string(), want, "{query}");
            // The description is itself a query that sets the same fault.
            let again = Fault::from_query(Some(&want.replace(' ', "&"))).unwrap();
            assert_eq!(again, Some(fault), "{query}");
        }
        for clear in [None, Some(""), Some("clear")] {
            assert_eq!(Fault::from_query(clear), Ok(None), "{clear:?}");
        }
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let cases = [
            ("status=99", "status"),
            ("status=600", "status"),
            ("status=abc", "status"),
            ("status=503&fraction=1.5", "fraction"),
            ("reset=sometimes", "reset"),
            ("delay_ms=-1", "delay_ms"),
            ("grpc_status=17", "grpc_status"),
            ("grpc_status=2&grpc_in=body", "grpc_in"),
            ("status=503&method=", "method"),
            ("status=503&path=api", "path"),
            ("status=503&colour=red", "colour"),
            ("clear&status=503", "clear"),
            ("fraction=0.5&method=GET", "fraction=0.5&method=GET"),
        ];
        for (query, name) in cases {
            let err = Fault::from_query(Some(query)).unwrap_err();
            assert_eq!(err.name, name, "{query}");
        }
    }

    #[test]
    fn a_grpc_status_alone_selects_only_grpc_requests() {
        let fault = Fault::from_query(Some("grpc_status=14")).unwrap().unwrap();
        assert!(fault.selects(&Method::POST, "/a.B/C", true));
        assert!(!fault.selects(&Method::POST, "/a.B/C", false));
        let fault = Fault::from_query(Some("grpc_status=14&delay_ms=1"))
            .unwrap()
            .unwrap();
        assert!(fault.selects(&Method::GET, "/", false));
    }

    #[test]
    fn method_and_path_narrow_the_selected_requests() {
        let fault = Fault::from_query(Some("status=503&method=POST&path=/api"))
            .unwrap()
            .unwrap();
        let cases = [
            (Method::POST, "/api/x", true),
            (Method::POST, "/api", true),
            (Method::GET, "/api/x", false),
            (Method::POST, "/other", false),
        ];
        for (method, path, want) in cases {
            assert_eq!(fault.selects(&method, path, false), want, "{method} {path}");
        }
    }
}
