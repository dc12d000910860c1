//! Logs and traces for every binary, set up in one call.
//!
//! Logs are JSON lines on stdout (level, target, span fields, and the OpenTelemetry trace and
//! span ids; see [`crate::log_format`]) filtered by `RUST_LOG`. Spans always get ids and trace
//! context always travels; they are exported over OTLP/gRPC only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and with it unset nothing is exported and nothing
//! fails. The standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and
//! `OTEL_TRACES_SAMPLER(_ARG)` variables are honoured by the SDK; `OTEL_TRACES_FILTER` picks
//! the exported spans independently of `RUST_LOG`.

use std::{sync::mpsc, time::Duration};

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
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

/// How long a process waits at exit for its last spans to reach the collector. Export errors
/// are logged by the SDK and never fatal; a collector that is down or hangs costs at most this.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// Flushes and stops trace export, so the last spans of a run are not lost.
///
/// Call [`TelemetryGuard::shutdown`] (or use [`traced`]) before the runtime ends. The batch
/// processor exports from a Tokio task, and stopping it from a thread that blocks the runtime
/// would wait forever on a current-thread runtime: that is why shutting down is async, and
/// why dropping a guard that was not shut down only waits [`SHUTDOWN_DEADLINE`].
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span and stops the exporter, within [`SHUTDOWN_DEADLINE`].
    pub async fn shutdown(mut self) {
        let Some(finished) = self.provider.take().and_then(stop_on_own_thread) else {
            return;
        };
        let waited =
            tokio::task::spawn_blocking(move || finished.recv_timeout(SHUTDOWN_DEADLINE)).await;
        match waited {
            Ok(Ok(Err(e))) => eprintln!("trace export did not shut down cleanly: {e}"),
            Ok(Err(mpsc::RecvTimeoutError::Timeout)) => eprintln!(
                "trace export still busy after {SHUTDOWN_DEADLINE:?}; its last spans are dropped"
            ),
            _ => {}
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Not shut down through `shutdown` (an early return or a panic): try, but never wait
        // longer than the deadline, whatever the runtime.
        if let Some(finished) = self.provider.take().and_then(stop_on_own_thread) {
            let _ = finished.recv_timeout(SHUTDOWN_DEADLINE);
        }
    }
}

/// Starts stopping `provider` on a thread of its own and returns where the result arrives. The
/// caller's thread stays free (on a current-thread runtime it must go on running the export
/// task), and a hung export cannot hold the process past the deadline: the thread is detached.
fn stop_on_own_thread(provider: SdkTracerProvider) -> Option<mpsc::Receiver<OTelSdkResult>> {
    let (done, finished) = mpsc::channel();
    std::thread::Builder::new()
        .name("otel-shutdown".into())
        .spawn(move || {
            let _ = done.send(provider.shutdown_with_timeout(SHUTDOWN_DEADLINE));
        })
        .ok()?;
    Some(finished)
}

/// Runs a binary's body with telemetry installed, then shuts telemetry down before returning,
/// so a short-lived command exits promptly with export on, on any runtime flavour.
pub async fn traced<T, E>(
    service_name: &str,
    body: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<TelemetryError>,
{
    let guard = init(service_name)?;
    let result = body.await;
    guard.shutdown().await;
    result
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
