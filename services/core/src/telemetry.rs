//! Logs and traces for every binary, set up in one call.
//!
//! Logs are JSON lines on stdout (level, target, span fields, and the OpenTelemetry trace and
//! span ids; see [`crate::log_format`]) filtered by `RUST_LOG`. Spans always get ids and trace
//! context always travels; they are exported over OTLP/gRPC only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and with it unset nothing is exported and nothing
//! fails. The standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and
//! `OTEL_TRACES_SAMPLER(_ARG)` variables are honoured by the SDK; `OTEL_TRACES_FILTER` picks
//! the exported spans independently of `RUST_LOG`.

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    runtime,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Dispatch;
use tracing_subscriber::{
    EnvFilter, Layer, fmt::format::JsonFields, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::log_format::JsonWithTrace;

/// The environment variable that switches trace export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Flushes and stops trace export when dropped, so the last spans of a run are not lost.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Builds the tracer provider: exporting to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set, and
/// otherwise recording nothing while still giving spans ids, so trace context keeps travelling
/// between services and log lines still carry trace ids.
///
/// Must be called inside a Tokio runtime: the batch processor exports from a Tokio task
/// because the tonic exporter needs the runtime's reactor.
pub fn tracer_provider(service_name: &str) -> Result<(SdkTracerProvider, bool), TelemetryError> {
    let mut resource = Resource::builder();
    // OTEL_SERVICE_NAME, when set, wins over the binary's own name.
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    if std::env::var_os(OTLP_ENDPOINT_ENV).is_none_or(|v| v.is_empty()) {
        return Ok((builder.build(), false));
    }
    let exporter = SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    Ok((builder.with_span_processor(processor).build(), true))
}

/// The variable that selects which spans are traced (an `EnvFilter` directive, default
/// `info`). It is separate from `RUST_LOG` so quieting the logs never silences the traces.
pub const TRACE_FILTER_ENV: &str = "OTEL_TRACES_FILTER";

/// Installs JSON logging and tracing for `service_name`, exporting spans when configured.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let (provider, exporting) = tracer_provider(service_name)?;
    global::set_tracer_provider(provider.clone());
    let format = JsonWithTrace::default();
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(format.clone())
        .with_filter(log_filter);
    let trace_filter =
        EnvFilter::try_from_env(TRACE_FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name.to_owned()))
        .with_filter(trace_filter);
    let dispatch: Dispatch = tracing_subscriber::registry().with(otel).with(fmt).into();
    let _ = format.dispatch().set(dispatch.downgrade());
    dispatch
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(TelemetryGuard {
        provider: exporting.then_some(provider),
    })
}
