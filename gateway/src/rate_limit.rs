//! Rate limits of the public API, shared by every gateway replica through Redis
//! ([`pulse_stream::throttle`], a GCRA: the limit at once, then one per `window / limit`).
//!
//! Two allowances: one per client address block ([`crate::client_address`]), checked before
//! anything else so key guessing is throttled too, and one per API key, so a key shared by
//! many addresses is bounded as well. Over either, the answer is 429 RATE_LIMITED with
//! Retry-After. When Redis cannot be used the request is allowed: losing the limiter must not
//! take the API down with it.

use std::time::Duration;

use pulse_stream::{Connection, RedisKeys, throttle::Decision};
use warp::http::{StatusCode, header::RETRY_AFTER};

use crate::envelope::ApiError;

/// Longest the limiter may delay a request before it is let through unchecked.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// Requests allowed per window (0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_address: u64,
    pub per_key: u64,
    pub window: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    conn: Connection,
    keys: RedisKeys,
    limits: Limits,
}

impl RateLimiter {
    pub fn new(conn: Connection, keys: RedisKeys, limits: Limits) -> Self {
        Self { conn, keys, limits }
    }

    /// `Some(429 response)` when the address block `client` is over its allowance.
    pub async fn check_address(&self, client: &str) -> Option<warp::reply::Response> {
        self.check("ip", client, self.limits.per_address).await
    }

    /// `Some(429 response)` when the key `id` is over its allowance.
    pub async fn check_key(&self, id: &str) -> Option<warp::reply::Response> {
        self.check("key", id, self.limits.per_key).await
    }

    async fn check(&self, kind: &str, client: &str, limit: u64) -> Option<warp::reply::Response> {
        if limit == 0 {
            return None;
        }
        let key = self.keys.throttle(kind, client);
        let spent = pulse_stream::throttle::spend(&self.conn, &key, limit, self.limits.window);
        let retry_after = match tokio::time::timeout(REDIS_TIMEOUT, spent).await {
            Ok(Ok(Decision::Allowed)) => return None,
            Ok(Ok(Decision::Refused { retry_after })) => retry_after,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rate limiter unavailable; request allowed");
                return None;
            }
            Err(_) => {
                tracing::warn!("rate limiter timed out; request allowed");
                return None;
            }
        };
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let per = if kind == "key" {
            "API key"
        } else {
            "client address"
        };
        let mut response = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "RATE_LIMITED",
            message: format!(
                "more than {limit} requests per {} s from this {per}; retry after {seconds} s",
                self.limits.window.as_secs()
            ),
        }
        .into_response();
        response.headers_mut().insert(RETRY_AFTER, seconds.into());
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{delete_redis_keys, redis_url, unique_name};

    use super::*;

    fn limiter(url: &str, prefix: &str, per_address: u64, per_key: u64) -> RateLimiter {
        let conn = pulse_stream::connection::connect_lazy(url).expect("url");
        RateLimiter::new(
            conn,
            RedisKeys::new(prefix),
            Limits {
                per_address,
                per_key,
                window: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn over_the_limit_is_429_with_retry_after() {
        let prefix = unique_name("ratelimit");
        let limiter = limiter(&redis_url(), &prefix, 2, 3);
        for _ in 0..2 {
            assert!(limiter.check_address("192.0.2.7").await.is_none());
        }
        let refused = limiter
            .check_address("192.0.2.7")
            .await
            .expect("the third request at once is refused");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()[RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        // 2 per minute: the next one is allowed within 30 s.
        assert!((1..=30).contains(&retry_after), "{retry_after}");
        // Another address, and keys, have their own allowances.
        assert!(limiter.check_address("192.0.2.8").await.is_none());
        for _ in 0..3 {
            assert!(limiter.check_key("0123456789ab").await.is_none());
        }
        assert!(limiter.check_key("0123456789ab").await.is_some());
        delete_redis_keys(&prefix)
            .await
            .expect("delete the allowances");
    }

    #[tokio::test]
    async fn requests_are_allowed_while_redis_is_down() {
        // Nothing listens on port 1.
        let limiter = limiter("redis://127.0.0.1:1", "pulse-test-down", 1, 1);
        for _ in 0..3 {
            assert!(limiter.check_address("192.0.2.8").await.is_none());
            assert!(limiter.check_key("0123456789ab").await.is_none());
        }
    }
}
