//! JSON request bodies, read with a size limit.
//!
//! The limit is enforced here rather than with warp's `content_length_limit`, whose rejection
//! would fall through to other routes and surface as a 404; an oversized body is a 400
//! BODY_TOO_LARGE in the error envelope, checked against Content-Length before reading and
//! against the bytes actually received for chunked bodies.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::{Filter, http::HeaderMap};

use crate::envelope::ApiError;

fn too_large(limit: u64) -> ApiError {
    ApiError::bad_request(
        "BODY_TOO_LARGE",
        format!("the request body is larger than {limit} bytes"),
    )
}

async fn collect<S, B>(headers: HeaderMap, body: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let declared = headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = body;
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("cannot read body: {e}")))?;
        if out.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}

/// The raw body, at most `limit` bytes.
pub fn limited(
    limit: u64,
) -> impl Filter<Extract = (Result<Bytes, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .then(move |headers, stream| collect(headers, Box::pin(stream), limit))
}

/// Parses a JSON body; malformed JSON and unknown or missing fields are a 400 INVALID_BODY.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("invalid JSON body: {e}")))
}
