//! Spans leave through OpenTelemetry's batch processor and OTLP exporter,
//! with one adaptation: the processor exports from its own thread, where
//! no tokio runtime runs, and tonic's channel needs one (the SDK's known
//! "no reactor running" failure). [`OnRuntime`] runs each export as a
//! task on the process's runtime and waits for it there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use tokio::runtime::Handle;

use crate::TraceConfig;

/// The provider that batches finished spans and sends them to the
/// configured collector. Must be called inside a tokio runtime.
pub(crate) fn provider(config: &TraceConfig) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|e| format!("the OTLP exporter to {}: {e}", config.endpoint))?;
    let exporter = OnRuntime {
        inner: Arc::new(exporter),
        runtime: Handle::current(),
        failing: Arc::new(AtomicBool::new(false)),
        endpoint: config.endpoint.clone().into(),
        timeout: config.export_timeout,
    };
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue)
        .with_max_export_batch_size(config.max_queue.min(512))
        .with_scheduled_delay(config.batch_delay)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build())
}

/// The OTLP exporter, run on the process's runtime; logs once when exports
/// start failing and once when they recover.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: Handle,
    failing: Arc<AtomicBool>,
    endpoint: Arc<str>,
    timeout: Duration,
}

impl SpanExporter for OnRuntime {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            // The exporter's own timeout covers the call; this one also
            // covers a connection that never completes.
            match tokio::time::timeout(timeout, inner.export(batch)).await {
                Ok(result) => result,
                Err(_) => Err(OTelSdkError::Timeout(timeout)),
            }
        });
        let failing = self.failing.clone();
        let endpoint = self.endpoint.clone();
        async move {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
            };
            match &result {
                Ok(()) if failing.swap(false, Ordering::Relaxed) => {
                    tracing::info!(%endpoint, "exporting spans again");
                }
                Err(e) if !failing.swap(true, Ordering::Relaxed) => {
                    tracing::warn!(%endpoint, error = %e, "cannot export spans; dropping them until the collector answers");
                }
                _ => {}
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    /// Called once, while building the provider, before any export holds
    /// a clone of the exporter.
    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
