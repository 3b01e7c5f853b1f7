//! Distributed tracing for namerd and linkerd-proxy.
//!
//! - [`context`]: the trace context a request carries (W3C `traceparent`;
//!   B3 as Linkerd 1.x's users send it) and what the next hop is sent;
//! - [`TraceConfig`] ([`config`]): the `io.l5d.opentelemetry` telemeter;
//! - [`Tracer`]: the sampling decision and the spans, exported over OTLP
//!   by OpenTelemetry's batch processor (`export.rs`); a request that is
//!   not sampled costs a header and two random numbers, and no span;
//! - `collector` (feature `testing`): an OTLP receiver for tests.
//!
//! Exporting never slows a request: finished spans wait in a bounded queue
//! and are dropped when the collector is down or slow.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::HeaderMap;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

#[cfg(feature = "testing")]
pub mod collector;
pub mod config;
pub mod context;
mod export;

pub use config::{KIND, TraceConfig};
pub use opentelemetry::Value;

/// Makes spans and sends them to the configured collector. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tracer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tracer: SdkTracer,
    provider: SdkTracerProvider,
    sample_rate: f64,
}

/// A span being recorded, or nothing (the request is not sampled). Ends
/// when dropped or [`end`](Span::end)ed.
#[derive(Debug, Default)]
pub struct Span(Option<opentelemetry_sdk::trace::Span>);

static GLOBAL: OnceLock<Tracer> = OnceLock::new();

// === impl Tracer ===

impl Tracer {
    /// Starts exporting as `config` says. Must be called inside a tokio
    /// runtime (the exporter's connection and exports run on it).
    pub fn start(config: &TraceConfig) -> Result<Tracer, String> {
        let provider = export::provider(config)?;
        let tracer = provider.tracer("l5d");
        Ok(Tracer {
            inner: Arc::new(Inner {
                tracer,
                provider,
                sample_rate: config.sample_rate,
            }),
        })
    }

    /// The span of one proxied request. It continues the trace in the
    /// request's context headers, and follows the caller's sampling
    /// decision when `trust_caller` (a server without `clearContext`);
    /// otherwise it samples at the configured rate. The headers are
    /// rewritten for the next hop: `traceparent` (and B3 as the caller
    /// sent it) naming this span, sampled or not, so that every hop after
    /// this one makes the same decision.
    pub fn request(&self, headers: &mut HeaderMap, trust_caller: bool) -> Span {
        let parent = context::extract(headers);
        let sampled = match parent.and_then(|p| p.sampled) {
            Some(decided) if trust_caller => decided,
            _ => self.sample(),
        };
        let b3 = parent.and_then(|p| p.b3);
        let parent_span = parent.map(|p| p.span_id);
        if !sampled {
            let trace_id = parent.map_or_else(random_trace_id, |p| p.trace_id);
            context::inject(headers, b3, trace_id, random_span_id(), parent_span, false);
            return Span(None);
        }
        let span = self.start_span(
            Cow::Borrowed("request"),
            SpanKind::Server,
            parent.map(|p| (p.trace_id, p.span_id)),
        );
        let cx = span.span_context();
        context::inject(headers, b3, cx.trace_id(), cx.span_id(), parent_span, true);
        Span(Some(span))
    }

    /// A span of work that is not a proxied request (namerd's binds and
    /// store writes): a child of the context in `parent` headers when they
    /// carry a sampled one, else a new trace sampled at the configured
    /// rate.
    pub fn span(&self, name: &'static str, parent: Option<&HeaderMap>) -> Span {
        let parent = parent.and_then(context::extract);
        let sampled = parent
            .and_then(|p| p.sampled)
            .unwrap_or_else(|| self.sample());
        if !sampled {
            return Span(None);
        }
        Span(Some(self.start_span(
            Cow::Borrowed(name),
            SpanKind::Internal,
            parent.map(|p| (p.trace_id, p.span_id)),
        )))
    }

    fn start_span(
        &self,
        name: Cow<'static, str>,
        kind: SpanKind,
        parent: Option<(TraceId, SpanId)>,
    ) -> opentelemetry_sdk::trace::Span {
        let cx = match parent {
            Some((trace_id, span_id)) => Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            )),
            None => Context::new(),
        };
        self.inner
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(&self.inner.tracer, &cx)
    }

    fn sample(&self) -> bool {
        let rate = self.inner.sample_rate;
        rate >= 1.0 || (rate > 0.0 && fastrand::f64() < rate)
    }

    /// Sends the spans still queued, waiting at most `bound`.
    pub async fn shutdown(&self, bound: Duration) {
        let provider = self.inner.provider.clone();
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(bound));
        match tokio::time::timeout(bound + Duration::from_secs(1), flushed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "spans not flushed at shutdown"),
            Ok(Err(e)) => tracing::warn!(error = %e, "spans not flushed at shutdown"),
            Err(_) => tracing::warn!(?bound, "spans not flushed at shutdown within the bound"),
        }
    }

    /// Makes `tracer` the process's tracer, for code that has no other way
    /// to it (namerd's store writes and binds). The first one set stays.
    pub fn set_global(tracer: Tracer) {
        let _ = GLOBAL.set(tracer);
    }

    /// The process's tracer, when tracing is configured.
    pub fn global() -> Option<&'static Tracer> {
        GLOBAL.get()
    }
}

/// A span of `name` from the process's tracer (see [`Tracer::global`]),
/// or nothing when tracing is off.
pub fn global_span(name: &'static str, parent: Option<&HeaderMap>) -> Span {
    Tracer::global().map_or_else(Span::default, |t| t.span(name, parent))
}

fn random_trace_id() -> TraceId {
    TraceId::from_bytes(fastrand::u128(1..).to_be_bytes())
}

fn random_span_id() -> SpanId {
    SpanId::from_bytes(fastrand::u64(1..).to_be_bytes())
}

// === impl Span ===

impl Span {
    /// Whether anything set on the span is kept; callers check it before
    /// computing a costly value.
    pub fn is_sampled(&self) -> bool {
        self.0.is_some()
    }

    pub fn rename(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(span) = &mut self.0 {
            span.update_name(name);
        }
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Marks the span failed, with why.
    pub fn fail(&mut self, why: impl Into<Cow<'static, str>>) {
        if let Some(span) = &mut self.0 {
            span.set_status(Status::error(why));
        }
    }

    /// The span's ids, when sampled: (trace, span), lower-case hex.
    pub fn ids(&self) -> Option<(String, String)> {
        let cx = self.0.as_ref()?.span_context();
        Some((cx.trace_id().to_string(), cx.span_id().to_string()))
    }

    pub fn end(self) {
        drop(self);
    }
}
