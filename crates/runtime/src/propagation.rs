//! W3C trace context across process boundaries.
//!
//! Two carriers exist in the mesh: gRPC metadata (every internal call) and the `traceparent`
//! field of a stream entry (ingester → worker, worker → analytics). Both go through the
//! globally installed propagator, so a post keeps one trace id from publish to broadcast.

use std::collections::HashMap;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The name of the W3C header and of the stream-entry field.
pub const TRACEPARENT: &str = "traceparent";

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Reads a remote parent context from HTTP/gRPC headers.
pub fn extract_from_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// The current span's context as a `traceparent` value, for a stream entry.
/// `None` when no trace is active.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut fields = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut fields));
    fields.remove(TRACEPARENT)
}

/// The remote context carried by a stream entry's `traceparent` field.
pub fn context_from_traceparent(traceparent: &str) -> Context {
    let mut fields = HashMap::new();
    fields.insert(TRACEPARENT.to_owned(), traceparent.to_owned());
    global::get_text_map_propagator(|p| p.extract(&fields))
}

/// Makes `span` a child of the remote context (a no-op for an empty context).
pub fn set_remote_parent(span: &tracing::Span, parent: Context) {
    let _ = span.set_parent(parent);
}

/// A gRPC channel that gives every outgoing call a client span (OpenTelemetry `rpc.*`
/// conventions) and sends that span's context in the call's metadata, so the server's span is
/// its child. Errors answered before a body (tonic answers every `Status` that way) mark the
/// span as failed.
#[derive(Debug, Clone)]
pub struct TracedChannel {
    inner: tonic::transport::Channel,
}

impl TracedChannel {
    pub fn new(inner: tonic::transport::Channel) -> Self {
        Self { inner }
    }
}

impl From<tonic::transport::Channel> for TracedChannel {
    fn from(inner: tonic::transport::Channel) -> Self {
        Self::new(inner)
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The span of one call of the gRPC method at `path` (`/pulse.v1.InferenceService/Analyze`),
/// named and described as the OpenTelemetry `rpc.*` conventions say; `kind` is `client` or
/// `server`. The status fields are filled in when the answer is known.
fn rpc_span(path: &str, kind: &'static str) -> tracing::Span {
    let path = path.trim_start_matches('/');
    let mut parts = path.splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    tracing::info_span!(
        "grpc",
        otel.name = %path,
        otel.kind = kind,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// Records the `grpc-status` of a response's headers on `span`; a non-zero one fails it.
pub fn record_grpc_status(span: &tracing::Span, headers: &http::HeaderMap) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    if code != 0 {
        span.record("otel.status_code", "ERROR");
        if let Some(message) = headers.get("grpc-message").and_then(|v| v.to_str().ok()) {
            span.record("otel.status_message", message);
        }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for TracedChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let span = rpc_span(request.uri().path(), "client");
        let cx = span.context();
        global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(request.headers_mut()))
        });
        let future = self.inner.call(request);
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                match &result {
                    Ok(response) => record_grpc_status(&recorded, response.headers()),
                    Err(e) => {
                        recorded.record("otel.status_code", "ERROR");
                        recorded.record("otel.status_message", tracing::field::display(e));
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Span for an incoming gRPC request, parented to the caller's context.
/// Pass to `tonic::transport::Server::builder().trace_fn(..)`.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let span = rpc_span(request.uri().path(), "server");
    set_remote_parent(&span, extract_from_headers(request.headers()));
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    #[test]
    fn traceparent_survives_a_round_trip() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = context_from_traceparent(traceparent);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, http::HeaderValue::from_static(traceparent));
        let from_headers = extract_from_headers(&headers);
        assert_eq!(from_headers.span().span_context().span_id(), sc.span_id());
        assert!(
            !context_from_traceparent("garbage")
                .span()
                .span_context()
                .is_valid()
        );
    }
}
