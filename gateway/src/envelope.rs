//! The JSON shapes of every REST answer.
//!
//! Success: `{"data": ..., "metadata": {...}, "filters": {...}, "timestamp": "..."}`.
//! Failure: `{"error": "human message", "code": "MACHINE_CODE", "timestamp": "..."}` with the
//! matching HTTP status; gRPC statuses from upstream map to HTTP statuses here, in one place.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use warp::{
    Reply,
    http::StatusCode,
    reply::{Response, json as json_reply, with_status},
};

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A successful answer.
pub fn ok(data: Value, metadata: Value, filters: Value) -> Response {
    json_reply(&body(data, metadata, filters)).into_response()
}

/// The JSON of a successful answer, for answers that are also kept (idempotent replays).
pub fn body(data: Value, metadata: Value, filters: Value) -> Value {
    json!({
        "data": data,
        "metadata": metadata,
        "filters": filters,
        "timestamp": now(),
    })
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: message.into(),
        }
    }

    pub fn into_response(self) -> Response {
        with_status(
            json_reply(&json!({
                "error": self.message,
                "code": self.code,
                "timestamp": now(),
            })),
            self.status,
        )
        .into_response()
    }
}

/// What tonic's channel timeout says when a call runs past it.
const UPSTREAM_DEADLINE_MESSAGE: &str = "Timeout expired";

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
            }
            Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
            Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
            // The channel's own deadline (UPSTREAM_TIMEOUT_MS): tonic reports it as cancelled.
            Code::Cancelled if status.message() == UPSTREAM_DEADLINE_MESSAGE => {
                (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT")
            }
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            _ => (StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR"),
        };
        let message = if http == StatusCode::BAD_GATEWAY {
            tracing::error!(code = ?status.code(), message = status.message(), "upstream failed");
            "an internal service failed".to_owned()
        } else {
            status.message().to_owned()
        };
        Self {
            status: http,
            code,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_map_to_http() {
        let cases = [
            (tonic::Status::invalid_argument("x"), 400),
            (tonic::Status::not_found("x"), 404),
            (tonic::Status::unavailable("x"), 503),
            (tonic::Status::resource_exhausted("x"), 429),
            (tonic::Status::deadline_exceeded("x"), 504),
            (tonic::Status::cancelled(UPSTREAM_DEADLINE_MESSAGE), 504),
            (tonic::Status::cancelled("the caller went away"), 502),
            (tonic::Status::internal("secret detail"), 502),
        ];
        for (status, http) in cases {
            let err = ApiError::from(status);
            assert_eq!(err.status.as_u16(), http);
        }
        assert!(
            !ApiError::from(tonic::Status::internal("secret detail"))
                .message
                .contains("secret")
        );
    }
}
