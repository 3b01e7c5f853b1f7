//! Request deadlines: Linkerd's `l5d-ctx-deadline` (read on servers that
//! trust their clients' context) and gRPC's `grpc-timeout` (honoured by
//! every h2 router, trusting or not: it can only shorten a request),
//! tightened by the service's
//! total timeout and sent on to the endpoint, so that a deadline shrinks
//! across every proxy of a path. A request whose deadline has passed is
//! failed at once, not sent.
//!
//! `l5d-ctx-deadline` is Finagle's `Deadline` context: `"<timestamp-ns>
//! <deadline-ns>"`, wall-clock nanoseconds since the epoch; with several
//! values the strictest wins. A malformed value is ignored and counted,
//! never fatal.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use crate::headers::{GRPC_TIMEOUT, L5D_CTX_DEADLINE};

/// When a request must be answered by, and which header said so
/// (`totalTimeoutMs` when the service's own timeout is the strictest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub source: &'static str,
}

/// Malformed deadline headers, by header.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    pub ctx_deadline: bool,
    pub grpc_timeout: bool,
}

/// The request's deadline from its headers (`l5d-ctx-deadline` only when
/// `trusted`, `grpc-timeout` only when `grpc_capable`: an h2 router) and
/// the service's `total_timeout`, counted from `start`. `None` when
/// nothing bounds the request.
pub fn of_request(
    headers: &HeaderMap,
    trusted: bool,
    grpc_capable: bool,
    total_timeout: Option<Duration>,
    start: Instant,
    malformed: &mut Malformed,
) -> Option<Deadline> {
    let mut best = total_timeout.map(|t| Deadline {
        at: start + t,
        source: "totalTimeoutMs",
    });
    let mut tighten = |candidate: Deadline| {
        if best.is_none_or(|b| candidate.at < b.at) {
            best = Some(candidate);
        }
    };
    if trusted && headers.contains_key(L5D_CTX_DEADLINE) {
        let now_wall = wall_nanos(SystemTime::now());
        for value in headers.get_all(L5D_CTX_DEADLINE) {
            match parse_ctx_deadline(value) {
                Some(deadline_ns) => {
                    let remaining = deadline_ns.saturating_sub(now_wall);
                    tighten(Deadline {
                        at: start + Duration::from_nanos(remaining),
                        source: "l5d-ctx-deadline",
                    });
                }
                None => malformed.ctx_deadline = true,
            }
        }
    }
    if let Some(value) = headers.get(GRPC_TIMEOUT).filter(|_| grpc_capable) {
        match parse_grpc_timeout(value) {
            Some(timeout) => tighten(Deadline {
                at: start + timeout,
                source: "grpc-timeout",
            }),
            None => malformed.grpc_timeout = true,
        }
    }
    best
}

/// Stamps `deadline` on a request leaving at `now`: `l5d-ctx-deadline`
/// always, `grpc-timeout` (the time left) on gRPC requests.
pub fn stamp(headers: &mut HeaderMap, deadline: Deadline, now: Instant, grpc: bool) {
    let left = deadline.at.saturating_duration_since(now);
    let now_wall = wall_nanos(SystemTime::now());
    let value = format!("{now_wall} {}", now_wall.saturating_add(nanos(left)));
    headers.insert(
        L5D_CTX_DEADLINE,
        HeaderValue::try_from(value).expect("digits and a space"),
    );
    if grpc || headers.contains_key(GRPC_TIMEOUT) {
        headers.insert(GRPC_TIMEOUT, grpc_timeout_value(left));
    }
}

/// `"<timestamp-ns> <deadline-ns>"`: the deadline.
fn parse_ctx_deadline(value: &HeaderValue) -> Option<u64> {
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    let mut parts = text.split(' ');
    let _timestamp: u64 = parts.next()?.parse().ok()?;
    let deadline: u64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(deadline)
}

/// gRPC's `TimeoutValue TimeoutUnit`: at most 8 digits, then one of
/// `H M S m u n`.
fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let bytes = value.as_bytes();
    let (&unit, digits) = bytes.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The shortest exact-enough `grpc-timeout` for `left`, within 8 digits.
fn grpc_timeout_value(left: Duration) -> HeaderValue {
    let micros = left.as_micros();
    let text = if micros < 100_000_000 {
        format!("{micros}u")
    } else {
        let millis = left.as_millis().min(99_999_999);
        format!("{millis}m")
    };
    HeaderValue::try_from(text).expect("digits and a unit")
}

fn wall_nanos(t: SystemTime) -> u64 {
    nanos(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::map;

    fn ctx(left: Duration) -> String {
        let now = wall_nanos(SystemTime::now());
        format!("{now} {}", now + nanos(left))
    }

    #[test]
    fn the_strictest_deadline_wins() {
        let start = Instant::now();
        let mut bad = Malformed::default();
        let total = Some(Duration::from_secs(10));
        let h = map(&[("l5d-ctx-deadline", &ctx(Duration::from_secs(3)))]);
        let d = of_request(&h, true, true, total, start, &mut bad).unwrap();
        assert_eq!(d.source, "l5d-ctx-deadline");
        assert!(d.at <= start + Duration::from_secs(3));
        assert!(d.at > start + Duration::from_secs(2));
        // Untrusted: the context is not read.
        let d = of_request(&h, false, true, total, start, &mut bad).unwrap();
        assert_eq!(d.source, "totalTimeoutMs");
        let h = map(&[("grpc-timeout", "1500m")]);
        let d = of_request(&h, false, true, total, start, &mut bad).unwrap();
        assert_eq!(
            (d.source, d.at),
            ("grpc-timeout", start + Duration::from_millis(1500))
        );
        assert_eq!(
            of_request(&map(&[]), true, true, None, start, &mut bad),
            None
        );
        // gRPC is HTTP/2: an HTTP/1.1 router does not read grpc-timeout.
        let h = map(&[("grpc-timeout", "1500m")]);
        assert_eq!(of_request(&h, true, false, None, start, &mut bad), None);
        assert_eq!(bad, Malformed::default());
    }

    #[test]
    fn several_context_values_take_the_strictest_and_past_ones_are_now() {
        let start = Instant::now();
        let mut bad = Malformed::default();
        let past = "1 2".to_string();
        let h = map(&[
            ("l5d-ctx-deadline", &ctx(Duration::from_secs(60))),
            ("l5d-ctx-deadline", &past),
        ]);
        let d = of_request(&h, true, true, None, start, &mut bad).unwrap();
        assert_eq!(d.at, start, "a passed deadline leaves no time");
    }

    #[test]
    fn malformed_values_are_ignored_and_reported() {
        for (name, value) in [
            ("l5d-ctx-deadline", "soon"),
            ("l5d-ctx-deadline", "1 2 3"),
            ("grpc-timeout", "100"),
            ("grpc-timeout", "123456789S"),
            ("grpc-timeout", "10x"),
            ("grpc-timeout", "m"),
        ] {
            let mut bad = Malformed::default();
            let d = of_request(
                &map(&[(name, value)]),
                true,
                true,
                None,
                Instant::now(),
                &mut bad,
            );
            assert_eq!(d, None, "{name}: {value}");
            assert!(bad.ctx_deadline || bad.grpc_timeout, "{name}: {value}");
        }
    }

    #[test]
    fn stamping_sends_the_time_left() {
        let start = Instant::now();
        let deadline = Deadline {
            at: start + Duration::from_millis(2500),
            source: "totalTimeoutMs",
        };
        let mut h = map(&[]);
        stamp(&mut h, deadline, start, true);
        assert_eq!(h[GRPC_TIMEOUT], "2500000u");
        let sent = parse_ctx_deadline(&h[L5D_CTX_DEADLINE]).unwrap();
        let mut bad = Malformed::default();
        let back = of_request(&h, true, true, None, start, &mut bad).unwrap();
        assert!(back.at <= deadline.at && back.at + Duration::from_secs(1) > deadline.at);
        assert!(sent > 0);
        // Not gRPC and no grpc-timeout: only the context header.
        let mut h = map(&[]);
        stamp(&mut h, deadline, start, false);
        assert!(!h.contains_key(GRPC_TIMEOUT));
        assert_eq!(
            parse_grpc_timeout(&grpc_timeout_value(Duration::from_secs(200))),
            Some(Duration::from_secs(200))
        );
    }
}
