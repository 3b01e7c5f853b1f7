//! The run-time controls that both backends share: the fault in force, the
//! request log, and the two HTTP endpoints that drive them, `/fault` and
//! `/requests` (any method, parameters in the query).
//!
//! The benchmarks use the demo backends, so a request when no fault is set
//! and the log is off costs one atomic load ([`Control::flags`]): no lock,
//! no allocation. Only then does a request take a lock (the fault's, to
//! count it; the log's, to add itself).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::fault::{BadParameter, Fault};

mod request_log;

use request_log::RequestLog;
pub(crate) use request_log::{Record, logged_headers};

const FAULT: u8 = 1;
const LOG: u8 = 2;

/// A backend's fault and request log. Shared by all its connections.
#[derive(Debug)]
pub(crate) struct Control {
    /// `FAULT | LOG`: what the fast path reads, in one load.
    flags: AtomicU8,
    fault: Mutex<Option<Arc<Armed>>>,
    log: Mutex<RequestLog>,
    /// The gRPC backend carries out only `grpc_status` and `delay_ms`.
    grpc_only: bool,
}

/// What one load of [`Control::flags`] tells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags(u8);

/// The fault in force and how many requests it has selected since it was set.
#[derive(Debug)]
struct Armed {
    fault: Fault,
    selected: AtomicU64,
}

/// A request that the fault in force hits.
#[derive(Debug)]
pub(crate) struct Hit(Arc<Armed>);

// === impl Control ===

impl Control {
    /// No fault; the log on or off. `grpc_only` refuses the faults that the
    /// gRPC backend cannot carry out (`status`, `reset`).
    pub(crate) fn new(log_requests: bool, grpc_only: bool) -> Control {
        Control {
            flags: AtomicU8::new(if log_requests { LOG } else { 0 }),
            fault: Mutex::new(None),
            log: Mutex::new(RequestLog::new(Instant::now())),
            grpc_only,
        }
    }

    /// Whether a fault is set and whether the log is on: the only cost of
    /// the controls on a request when neither is.
    pub(crate) fn flags(&self) -> Flags {
        Flags(self.flags.load(Ordering::Acquire))
    }

    /// Counts the request if the fault in force selects it (by method,
    /// path and, for a fault that only sets `grpc_status`, whether it is
    /// gRPC), and says whether the fault's fraction hits it.
    pub(crate) fn hit(&self, flags: Flags, method: &Method, path: &str, grpc: bool) -> Option<Hit> {
        if flags.0 & FAULT == 0 {
            return None;
        }
        let armed = lock(&self.fault).clone()?;
        if !armed.fault.selects(method, path, grpc) {
            return None;
        }
        let i = armed.selected.fetch_add(1, Ordering::Relaxed);
        armed.fault.fraction.hits(i).then_some(Hit(armed))
    }

    /// Adds a request to the log, if the log is on (`flags` from when the
    /// request arrived).
    pub(crate) fn record(&self, flags: Flags, record: impl FnOnce() -> Record) {
        if flags.logging() {
            lock(&self.log).push(record());
        }
    }

    /// Answers `/fault` and `/requests`; `None` for any other path.
    pub(crate) fn answer(&self, path: &str, query: Option<&str>) -> Option<Response<Bytes>> {
        match path {
            "/fault" => Some(self.answer_fault(query)),
            "/requests" => Some(self.answer_requests(query)),
            _ => None,
        }
    }

    /// `/fault?...`: sets (or clears) the fault and describes the one in
    /// force; a bad parameter is a 400 that leaves it in force.
    fn answer_fault(&self, query: Option<&str>) -> Response<Bytes> {
        let fault = Fault::from_query(query).and_then(|fault| self.check(fault));
        let mut current = lock(&self.fault);
        match fault {
            Ok(fault) => {
                *current = fault.map(|fault| {
                    Arc::new(Armed {
                        fault,
                        selected: AtomicU64::new(0),
                    })
                });
                // Under the lock, so that flag and fault change together.
                if current.is_some() {
                    self.flags.fetch_or(FAULT, Ordering::Release);
                } else {
                    self.flags.fetch_and(!FAULT, Ordering::Release);
                }
                text(StatusCode::OK, describe(current.as_deref()))
            }
            Err(bad) => {
                let in_force = describe(current.as_deref());
                text(StatusCode::BAD_REQUEST, format!("{bad}\nstill {in_force}"))
            }
        }
    }

    /// Refuses on the gRPC backend what only the HTTP backend can do.
    fn check(&self, fault: Option<Fault>) -> Result<Option<Fault>, BadParameter> {
        let fault = match fault {
            Some(fault) if self.grpc_only => fault,
            other => return Ok(other),
        };
        let refused = |name: &str| BadParameter {
            name: name.to_string(),
            expected: "grpc_status or delay_ms: the gRPC backend answers every call with \
                       a gRPC status, and resets nothing",
        };
        match (fault.status, fault.reset) {
            (Some(_), _) => Err(refused("status")),
            (_, Some(_)) => Err(refused("reset")),
            _ => Ok(Some(fault)),
        }
    }

    /// `/requests`: the log as JSON; `?clear` answers it and empties it;
    /// `?on` and `?off` switch it.
    fn answer_requests(&self, query: Option<&str>) -> Response<Bytes> {
        match query.unwrap_or("") {
            "on" => {
                self.flags.fetch_or(LOG, Ordering::Release);
                text(StatusCode::OK, "requests log=on".to_string())
            }
            "off" => {
                self.flags.fetch_and(!LOG, Ordering::Release);
                text(StatusCode::OK, "requests log=off".to_string())
            }
            _ if !self.flags().logging() => text(
                StatusCode::CONFLICT,
                "the request log is off: start l5d-demo with --log-requests, or call /requests?on"
                    .to_string(),
            ),
            "" => json(lock(&self.log).to_json()),
            "clear" => {
                let mut log = lock(&self.log);
                let body = log.to_json();
                log.clear();
                json(body)
            }
            _ => text(
                StatusCode::BAD_REQUEST,
                "/requests: expected no parameter, clear, on or off".to_string(),
            ),
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn describe(armed: Option<&Armed>) -> String {
    match armed {
        Some(armed) => format!("fault {}", armed.fault),
        None => "fault none".to_string(),
    }
}

fn text(status: StatusCode, line: String) -> Response<Bytes> {
    let mut rsp = Response::new(Bytes::from(line + "\n"));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}

fn json(body: Vec<u8>) -> Response<Bytes> {
    let mut rsp = Response::new(Bytes::from(body));
    rsp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rsp
}

// === impl Flags ===

impl Flags {
    pub(crate) fn logging(self) -> bool {
        self.0 & LOG != 0
    }
}

// === impl Hit ===

impl Hit {
    pub(crate) fn fault(&self) -> &Fault {
        &self.0.fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rsp: &Response<Bytes>) -> &str {
        std::str::from_utf8(rsp.body()).unwrap()
    }

    #[test]
    fn a_bad_parameter_keeps_the_fault_in_force() {
        let control = Control::new(false, false);
        let rsp = control
            .answer("/fault", Some("status=503&fraction=0.5"))
            .unwrap();
        assert_eq!(body(&rsp), "fault status=503 fraction=0.5\n");
        let rsp = control
            .answer("/fault", Some("status=503&fraction=2"))
            .unwrap();
        assert_eq!(rsp.status(), StatusCode::BAD_REQUEST);
        assert!(
            body(&rsp).starts_with("/fault: fraction: expected a decimal"),
            "{}",
            body(&rsp)
        );
        assert!(body(&rsp).ends_with("\nstill fault status=503 fraction=0.5\n"));
        let hits: Vec<bool> = (0..4)
            .map(|_| {
                control
                    .hit(control.flags(), &Method::GET, "/", false)
                    .is_some()
            })
            .collect();
        assert_eq!(hits, [false, true, false, true]);
        let rsp = control.answer("/fault", None).unwrap();
        assert_eq!(body(&rsp), "fault none\n");
        assert!(
            control
                .hit(control.flags(), &Method::GET, "/", false)
                .is_none()
        );
    }

    #[test]
    fn the_grpc_backend_refuses_http_faults() {
        let control = Control::new(false, true);
        for (query, name) in [("status=503", "status"), ("reset=after_head", "reset")] {
            let rsp = control.answer("/fault", Some(query)).unwrap();
            assert_eq!(rsp.status(), StatusCode::BAD_REQUEST, "{query}");
            assert!(
                body(&rsp).starts_with(&format!("/fault: {name}: ")),
                "{query}"
            );
        }
        let rsp = control
            .answer("/fault", Some("grpc_status=14&delay_ms=5"))
            .unwrap();
        assert_eq!(rsp.status(), StatusCode::OK);
    }

    #[test]
    fn a_grpc_status_fault_selects_only_grpc_requests() {
        let control = Control::new(false, false);
        control.answer("/fault", Some("grpc_status=14&fraction=0.5"));
        let flags = control.flags();
        // Plain requests in between do not move the count.
        let hits: Vec<bool> = [true, false, true, false, true, true]
            .into_iter()
            .map(|grpc| control.hit(flags, &Method::POST, "/x", grpc).is_some())
            .collect();
        assert_eq!(hits, [false, false, true, false, false, true]);
    }
}
