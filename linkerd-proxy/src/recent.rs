//! `io.l5d.recentRequests`: the last sampled requests the proxy served
//! (router, method, logical name, bound id, endpoint, status, latency),
//! kept in a ring for the dashboard's recent-requests view and
//! `/admin/recent_requests.json`. Off unless configured; when on, an
//! unsampled request costs one random number.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use l5d_dtab::Path;
use serde::Serialize;

use crate::config::RecentRequestsConfig;

/// What served a response: the bound id picked, its endpoint and the
/// retries before it. Put in the response's extensions by the attempt
/// that reached an endpoint, while recent requests or a sampled span
/// will read it.
#[derive(Clone, Debug)]
pub struct Served {
    pub id: Path,
    pub endpoint: SocketAddr,
    pub retries: u32,
}

/// One request as the view shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecentRequest {
    /// Milliseconds since the epoch, when the response head was ready.
    pub time: u64,
    pub router: String,
    pub method: String,
    /// The logical name; none when the request could not be named.
    pub name: Option<String>,
    pub bound_id: Option<String>,
    pub endpoint: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
}

/// The ring of the last sampled requests.
#[derive(Debug)]
pub struct RecentRequests {
    config: RecentRequestsConfig,
    ring: Mutex<VecDeque<RecentRequest>>,
}

/// The answer of `/admin/recent_requests.json`: newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentSnapshot {
    pub sample_rate: f64,
    pub capacity: usize,
    pub requests: Vec<RecentRequest>,
}

/// What [`RecentRequests::record`] is told about one request.
#[derive(Debug)]
pub struct Answered<'a> {
    pub router: &'a str,
    pub method: &'a http::Method,
    pub name: Option<&'a Path>,
    pub served: Option<&'a Served>,
    pub status: http::StatusCode,
    pub elapsed: Duration,
}

impl RecentRequests {
    pub fn new(config: RecentRequestsConfig) -> Self {
        RecentRequests {
            config,
            ring: Mutex::new(VecDeque::with_capacity(config.capacity)),
        }
    }

    /// Keeps `answered` if it is sampled, dropping the oldest when full.
    pub fn record(&self, answered: Answered<'_>) {
        if self.config.sample_rate < 1.0 && fastrand::f64() >= self.config.sample_rate {
            return;
        }
        let request = RecentRequest {
            time: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            router: answered.router.to_string(),
            method: answered.method.to_string(),
            name: answered.name.map(Path::show),
            bound_id: answered.served.map(|s| s.id.show()),
            endpoint: answered.served.map(|s| s.endpoint.to_string()),
            status: answered.status.as_u16(),
            latency_ms: answered.elapsed.as_secs_f64() * 1e3,
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == self.config.capacity {
            ring.pop_front();
        }
        ring.push_back(request);
    }

    pub fn snapshot(&self) -> RecentSnapshot {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        RecentSnapshot {
            sample_rate: self.config.sample_rate,
            capacity: self.config.capacity,
            requests: ring.iter().rev().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Answered<'static> {
        static GET: http::Method = http::Method::GET;
        Answered {
            router: "http",
            method: &GET,
            name: None,
            served: None,
            status: http::StatusCode::from_u16(status).unwrap(),
            elapsed: Duration::from_millis(2),
        }
    }

    #[test]
    fn keeps_the_last_capacity_requests_newest_first() {
        let recent = RecentRequests::new(RecentRequestsConfig {
            sample_rate: 1.0,
            capacity: 2,
        });
        for status in [200, 404, 503] {
            recent.record(answered(status));
        }
        let snap = recent.snapshot();
        let statuses: Vec<u16> = snap.requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![503, 404]);
        assert_eq!(snap.requests[0].latency_ms, 2.0);
    }
}
