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
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The name of the W3C header and of the stream-entry field.
pub const TRACEPARENT: &str = "traceparent";

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context into outgoing gRPC metadata.
pub fn inject_into_metadata(metadata: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
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

/// Tonic client interceptor that adds the current trace context to every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}

/// A channel whose requests carry trace context.
pub type TracedChannel = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    TraceContextInterceptor,
>;

/// Span for an incoming gRPC request, parented to the caller's context.
/// Pass to `tonic::transport::Server::builder().trace_fn(..)`.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
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
