//! The request log behind `/requests`: the last [`CAPACITY`] requests a
//! backend answered (control endpoints aside), with what tests of a proxy
//! need to check: the order, the time, what was faulted and answered, and
//! the headers a proxy adds or forwards.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Version};
use serde::Serialize;

/// How many requests the log keeps; older ones make room.
pub(crate) const CAPACITY: usize = 10_000;

/// One answered request, as the backend saw it.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) method: Method,
    /// The path and query as received (a gRPC call: `/package.Service/Method`).
    pub(crate) path: String,
    pub(crate) version: Version,
    /// When the request arrived.
    pub(crate) arrived: Instant,
    /// Which fault changed the answer (`status`, `reset_before_head`, ...).
    pub(crate) faulted: Option<&'static str>,
    /// The status answered; `None` when the request was reset before it.
    pub(crate) status: Option<StatusCode>,
    /// The gRPC status answered, for gRPC requests.
    pub(crate) grpc_status: Option<u8>,
    /// The headers kept: see [`logged_headers`].
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

/// A bounded ring of records, numbered from 0 since it was made or cleared.
#[derive(Debug)]
pub(super) struct RequestLog {
    started: Instant,
    records: VecDeque<(u64, Record)>,
    next_seq: u64,
}

/// One record as `/requests` shows it.
#[derive(Serialize)]
struct Entry<'a> {
    seq: u64,
    method: &'a str,
    path: &'a str,
    version: &'static str,
    /// Milliseconds since the backend started, to the microsecond.
    at_ms: f64,
    faulted: Option<&'static str>,
    status: Option<u16>,
    grpc_status: Option<u8>,
    headers: BTreeMap<&'a str, String>,
}

// === impl RequestLog ===

impl RequestLog {
    /// An empty log; times are counted from `started`.
    pub(super) fn new(started: Instant) -> RequestLog {
        RequestLog {
            started,
            records: VecDeque::new(),
            next_seq: 0,
        }
    }

    pub(super) fn push(&mut self, record: Record) {
        if self.records.len() == CAPACITY {
            self.records.pop_front();
        }
        self.records.push_back((self.next_seq, record));
        self.next_seq += 1;
    }

    /// Empties the log and numbers the next request 0.
    pub(super) fn clear(&mut self) {
        self.records = VecDeque::new();
        self.next_seq = 0;
    }

    /// The log as a JSON array, oldest first. A header sent more than once
    /// is shown once, its values joined with `, ` (as HTTP combines them).
    pub(super) fn to_json(&self) -> Vec<u8> {
        let entries: Vec<Entry<'_>> = self
            .records
            .iter()
            .map(|(seq, r)| {
                let mut headers: BTreeMap<&str, String> = BTreeMap::new();
                for (name, value) in &r.headers {
                    let value = String::from_utf8_lossy(value.as_bytes());
                    headers
                        .entry(name.as_str())
                        .and_modify(|v| {
                            v.push_str(", ");
                            v.push_str(&value);
                        })
                        .or_insert_with(|| value.into_owned());
                }
                Entry {
                    seq: *seq,
                    method: r.method.as_str(),
                    path: &r.path,
                    version: version(r.version),
                    at_ms: millis(r.arrived.saturating_duration_since(self.started)),
                    faulted: r.faulted,
                    status: r.status.map(|s| s.as_u16()),
                    grpc_status: r.grpc_status,
                    headers,
                }
            })
            .collect();
        serde_json::to_vec(&entries).expect("the log's entries serialize")
    }
}

/// The request headers the log keeps: `l5d-*` (what a linkerd proxy adds
/// and forwards), `grpc-timeout` (deadlines) and trace context
/// (`traceparent`, `b3`, `x-b3-*`).
pub(crate) fn logged_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("l5d-")
                || name.starts_with("x-b3-")
                || matches!(name, "grpc-timeout" | "traceparent" | "b3")
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Milliseconds as a float with microseconds: 12.345 (the division is
/// correctly rounded, so this is the double nearest the written value).
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, arrived: Instant) -> Record {
        Record {
            method: Method::GET,
            path: path.to_string(),
            version: Version::HTTP_11,
            arrived,
            faulted: None,
            status: Some(StatusCode::OK),
            grpc_status: None,
            headers: Vec::new(),
        }
    }

    fn json(log: &RequestLog) -> Vec<serde_json::Value> {
        serde_json::from_slice(&log.to_json()).unwrap()
    }

    #[test]
    fn the_log_keeps_the_last_capacity_requests_numbered_from_0() {
        let started = Instant::now();
        let mut log = RequestLog::new(started);
        for i in 0..CAPACITY + 5 {
            log.push(record(&format!("/{i}"), started));
        }
        let entries = json(&log);
        assert_eq!(entries.len(), CAPACITY);
        assert_eq!(entries[0]["seq"], 5);
        assert_eq!(entries[0]["path"], "/5");
        assert_eq!(entries[CAPACITY - 1]["seq"], CAPACITY as u64 + 4);
        log.clear();
        log.push(record("/again", started));
        assert_eq!(json(&log)[0]["seq"], 0);
    }

    #[test]
    fn times_are_milliseconds_with_microseconds_and_headers_are_combined() {
        let started = Instant::now();
        let mut log = RequestLog::new(started);
        let mut headers = HeaderMap::new();
        headers.append("l5d-dtab", HeaderValue::from_static("/a=>/b"));
        headers.append("l5d-dtab", HeaderValue::from_static("/c=>/d"));
        headers.append("grpc-timeout", HeaderValue::from_static("100m"));
        headers.append("x-other", HeaderValue::from_static("1"));
        let mut r = record("/p?q", started + Duration::from_micros(12_345));
        r.headers = logged_headers(&headers);
        log.push(r);
        let entry = &json(&log)[0];
        assert_eq!(entry["at_ms"], 12.345);
        assert_eq!(
            entry["headers"],
            serde_json::json!({"grpc-timeout": "100m", "l5d-dtab": "/a=>/b, /c=>/d"})
        );
    }
}
