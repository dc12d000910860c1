//! `Idempotency-Key` on `POST /api/posts`: a retry stores nothing twice and gets the first
//! answer back.
//!
//! Two mechanisms, because a timed-out request (504) may or may not have reached the stream:
//! - Post ids the caller leaves out are derived from the key (`caller`, `Idempotency-Key`,
//!   position), not drawn at random, so a retry publishes the same ids and the worker drops
//!   the second copy as a duplicate, whatever happened to the first attempt.
//! - A successful answer is kept for `IDEMPOTENCY_HOURS` under the caller and key, with a digest
//!   of the request body; a retry gets it back (`Idempotent-Replayed: true`) without publishing
//!   again, and a different body under the same key is refused (422), since that is a bug in
//!   the client, not a retry.

use std::time::Duration;

use pulse_stream::{Connection, RedisKeys};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warp::http::{HeaderMap, StatusCode};

use crate::envelope::ApiError;

pub const HEADER: &str = "idempotency-key";
/// Response header on an answer replayed from an earlier request.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest accepted Idempotency-Key.
const MAX_KEY_LEN: usize = 255;
/// Longest a Redis call may delay a publish; past it the publish goes on without replay.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request's Idempotency-Key, checked: 1 to 255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text.is_empty() || text.len() > MAX_KEY_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(text.to_owned()))
}

/// The id of the `index`-th post of a request without its own id: the same for every retry.
pub fn derived_post_id(caller: &str, key: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("{caller}\n{key}\n{index}").as_bytes());
    // 16 bytes shown as a UUID, so derived and random ids look alike.
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// What an earlier request with the same key left.
pub enum Recall {
    /// Nothing: go ahead, then [`Idempotency::remember`] the answer.
    Fresh,
    /// The answer to replay.
    Replay(Value),
}

#[derive(Clone)]
pub struct Idempotency {
    redis: Connection,
    keys: RedisKeys,
    ttl: Duration,
}

impl Idempotency {
    pub fn new(redis: Connection, keys: RedisKeys, ttl: Duration) -> Self {
        Self { redis, keys, ttl }
    }

    fn slot(&self, caller: &str, key: &str) -> String {
        self.keys
            .idempotent_reply(caller, &hex(&Sha256::digest(key.as_bytes())))
    }

    /// The stored answer for `caller`'s `key`, if the same body was sent before.
    pub async fn recall(&self, caller: &str, key: &str, body: &[u8]) -> Result<Recall, ApiError> {
        let slot = self.slot(caller, key);
        let stored =
            tokio::time::timeout(REDIS_TIMEOUT, pulse_stream::cache::get(&self.redis, &slot)).await;
        let stored = match stored {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => return Ok(Recall::Fresh),
            // Without the store, a retry is still harmless (derived ids): it just publishes again.
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "idempotency store unavailable");
                return Ok(Recall::Fresh);
            }
            Err(_) => {
                tracing::warn!("idempotency store timed out");
                return Ok(Recall::Fresh);
            }
        };
        let Ok(record) = serde_json::from_slice::<Value>(&stored) else {
            return Ok(Recall::Fresh);
        };
        if record["request"].as_str() != Some(hex(&Sha256::digest(body)).as_str()) {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "IDEMPOTENCY_KEY_REUSED",
                message: "this Idempotency-Key was used with a different body; use a new key for a new request".into(),
            });
        }
        Ok(Recall::Replay(record["response"].clone()))
    }

    /// Keeps `response`, the answer to `body`, for retries with `caller`'s `key`.
    pub async fn remember(&self, caller: &str, key: &str, body: &[u8], response: &Value) {
        let record = json!({"request": hex(&Sha256::digest(body)), "response": response});
        let (slot, record) = (self.slot(caller, key), record.to_string());
        let stored =
            pulse_stream::cache::set_with_expiry(&self.redis, &slot, record.as_bytes(), self.ttl);
        match tokio::time::timeout(REDIS_TIMEOUT, stored).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "idempotent answer not stored"),
            Err(_) => tracing::warn!("idempotent answer not stored: timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_post_id("0123456789ab", "order-17", 0);
        assert_eq!(a, derived_post_id("0123456789ab", "order-17", 0));
        assert_ne!(a, derived_post_id("0123456789ab", "order-17", 1));
        assert_ne!(a, derived_post_id("0123456789ab", "order-18", 0));
        assert_ne!(a, derived_post_id("ba9876543210", "order-17", 0));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(key(&headers), Ok(None));
        headers.insert(HEADER, "order-17".parse().expect("h"));
        assert_eq!(key(&headers), Ok(Some("order-17".into())));
        for bad in ["", "a b", &"x".repeat(256)] {
            headers.insert(HEADER, bad.parse().expect("h"));
            assert_eq!(
                key(&headers).map_err(|e| e.code),
                Err("INVALID_IDEMPOTENCY_KEY"),
                "{bad:?}"
            );
        }
    }
}
