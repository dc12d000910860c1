//! A request id on every response and in every log line of the request.
//!
//! A well-formed incoming `x-request-id` (from a proxy or a client correlating its own logs)
//! is kept; anything else is replaced by a fresh UUID, so a hostile header can neither bloat
//! logs nor inject into them. The id is recorded on the request's tracing span, which every log
//! line of the request carries.

use std::convert::Infallible;

use pulse_runtime::propagation::{extract_from_headers, set_remote_parent};
use warp::{Filter, http::HeaderMap};

pub const HEADER: &str = "x-request-id";
/// Longest accepted incoming id.
const MAX_LEN: usize = 128;

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn choose(headers: &HeaderMap) -> RequestId {
    let incoming = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_well_formed(id));
    RequestId(incoming.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
}

/// Extracts the request's id and records it on the current span (the request span).
pub fn filter() -> impl Filter<Extract = (RequestId,), Error = Infallible> + Clone {
    warp::header::headers_cloned().map(|headers: HeaderMap| {
        let id = choose(&headers);
        tracing::Span::current().record("request_id", id.0.as_str());
        id
    })
}

/// The span every request runs in (OpenTelemetry HTTP server conventions), a child of the
/// caller's `traceparent` when it sent one; `request_id` is filled in by [`filter`] and the
/// status by the gateway's access log.
pub fn span(info: warp::trace::Info<'_>) -> tracing::Span {
    let route = crate::metrics::route_label(info.path());
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{} {route}", info.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %info.method(),
        http.route = route,
        url.path = %info.path(),
        http.response.status_code = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    set_remote_parent(&span, extract_from_headers(info.request_headers()));
    span
}

/// Records the response status on the request's span; server errors fail it.
pub fn record_status(status: warp::http::StatusCode) {
    let span = tracing::Span::current();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_kept() {
        assert!(is_well_formed("abc-123_x.y:z"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("has space"));
        assert!(!is_well_formed("new\nline"));
        assert!(!is_well_formed(&"x".repeat(129)));
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, "client-42".parse().expect("header"));
        assert_eq!(choose(&headers).0, "client-42");
        headers.insert(HEADER, "bad id!".parse().expect("header"));
        let fresh = choose(&headers).0;
        assert!(uuid::Uuid::parse_str(&fresh).is_ok());
    }
}
