//! A request id on every response and in every log line of the request.
//!
//! A well-formed incoming `x-request-id` (from a proxy or a client correlating its own logs)
//! is kept; anything else is replaced by a fresh UUID, so a hostile header can neither bloat
//! logs nor inject into them. The id is recorded on the request's tracing span, which every log
//! line of the request carries.

use std::convert::Infallible;

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

/// The span every request runs in; `request_id` is filled in by [`filter`].
pub fn span(info: warp::trace::Info<'_>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %info.method(),
        path = %info.path(),
        request_id = tracing::field::Empty,
    )
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
