//! The mesh API's metrics:
//!
//! * `namerd_mesh_requests_total{rpc,code}`: finished requests by gRPC
//!   status code; a stream counts when it ends (`CANCELLED` when the client
//!   went away first);
//! * `namerd_mesh_streams_open{rpc}`: open server streams, kept right by a
//!   guard that decrements on drop, however the stream ends;
//! * `namerd_mesh_stream_messages_total{rpc}`: messages sent on streams.
//!
//! Watching the open-stream gauge return to zero is how a leak of watches
//! (Linkerd #2212) shows.

use tonic::Code;

/// The canonical upper-case name of a status code, as gRPC dashboards use.
pub(crate) fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts one finished request (or one stream refused at open).
pub(crate) fn record_request(rpc: &'static str, code: Code) {
    metrics::counter!("namerd_mesh_requests_total", "rpc" => rpc, "code" => code_label(code))
        .increment(1);
}

/// Held by an open stream: counts it open until dropped, and counts the
/// request with the code it ended with.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    rpc: &'static str,
    /// `namerd_mesh_stream_messages_total{rpc}`, looked up once: a write
    /// to 10,000 watchers counts 10,000 messages.
    messages: metrics::Counter,
    /// How the stream ended; `None` until it has (then the client
    /// cancelled it, if it is dropped like that).
    code: Option<Code>,
}

impl StreamGuard {
    pub(crate) fn open(rpc: &'static str) -> Self {
        metrics::gauge!("namerd_mesh_streams_open", "rpc" => rpc).increment(1.0);
        StreamGuard {
            rpc,
            messages: metrics::counter!("namerd_mesh_stream_messages_total", "rpc" => rpc),
            code: None,
        }
    }

    pub(crate) fn sent(&self) {
        self.messages.increment(1);
    }

    pub(crate) fn ended(&mut self, code: Code) {
        self.code.get_or_insert(code);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!("namerd_mesh_streams_open", "rpc" => self.rpc).decrement(1.0);
        record_request(self.rpc, self.code.unwrap_or(Code::Cancelled));
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn a_stream_counts_open_until_dropped_and_then_by_its_code() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let line = |name: &str| {
            let text = handle.render();
            let found = text
                .lines()
                .find(|l| l.starts_with(name))
                .map(str::to_owned);
            found.unwrap_or_default()
        };
        metrics::with_local_recorder(&recorder, || {
            let mut ended = StreamGuard::open("StreamDtab");
            let cancelled = StreamGuard::open("StreamDtab");
            ended.sent();
            assert_eq!(
                line("namerd_mesh_streams_open"),
                r#"namerd_mesh_streams_open{rpc="StreamDtab"} 2"#
            );
            ended.ended(Code::NotFound);
            drop(ended);
            drop(cancelled);
            record_request("GetDtab", Code::Ok);
        });
        assert_eq!(
            line("namerd_mesh_streams_open"),
            r#"namerd_mesh_streams_open{rpc="StreamDtab"} 0"#
        );
        assert_eq!(
            line("namerd_mesh_stream_messages_total"),
            r#"namerd_mesh_stream_messages_total{rpc="StreamDtab"} 1"#
        );
        let text = handle.render();
        for counted in [
            r#"namerd_mesh_requests_total{rpc="StreamDtab",code="NOT_FOUND"} 1"#,
            r#"namerd_mesh_requests_total{rpc="StreamDtab",code="CANCELLED"} 1"#,
            r#"namerd_mesh_requests_total{rpc="GetDtab",code="OK"} 1"#,
        ] {
            assert!(text.contains(counted), "{counted} in {text}");
        }
    }
}
