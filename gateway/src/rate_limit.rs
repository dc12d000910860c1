//! Per-client-IP rate limiting of /api, with counters in Redis so every gateway replica
//! shares them.
//!
//! A fixed window: one counter per client per window, incremented on each request and
//! expiring after the window. Over the limit, the answer is 429 RATE_LIMITED with Retry-After
//! (the seconds left in the window). When Redis cannot be used the request is allowed: losing
//! the limiter must not take the API down with it.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use pulse_stream::{Connection, RedisKeys};
use warp::http::{HeaderMap, StatusCode, header::RETRY_AFTER};

use crate::envelope::ApiError;

/// Longest the limiter may delay a request before it is let through unchecked.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct RateLimiter {
    conn: Connection,
    keys: RedisKeys,
    limit: u64,
    window_secs: u64,
    trust_forwarded_for: bool,
}

/// The client's address: the socket peer, or the first X-Forwarded-For entry when trusted.
pub fn client_ip(
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|v| v.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok());
    forwarded.or_else(|| remote.map(|a| a.ip()))
}

impl RateLimiter {
    pub fn new(
        conn: Connection,
        keys: RedisKeys,
        limit: u64,
        window_secs: u64,
        trust_forwarded_for: bool,
    ) -> Self {
        Self {
            conn,
            keys,
            limit,
            window_secs: window_secs.max(1),
            trust_forwarded_for,
        }
    }

    /// `Some(429 response)` when the client is over its limit for the current window.
    pub async fn check(
        &self,
        path: &str,
        remote: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Option<warp::reply::Response> {
        if self.limit == 0 || !path.starts_with("/api/") {
            return None;
        }
        let ip = client_ip(remote, headers, self.trust_forwarded_for)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let window = now / self.window_secs;
        let key = self.keys.rate_limit(&ip.to_string(), window);
        let counted = pulse_stream::counters::increment(&self.conn, &key, self.window_secs + 1);
        let count = match tokio::time::timeout(REDIS_TIMEOUT, counted).await {
            Ok(Ok(count)) => count,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rate limiter unavailable; request allowed");
                return None;
            }
            Err(_) => {
                tracing::warn!("rate limiter timed out; request allowed");
                return None;
            }
        };
        if count <= self.limit {
            return None;
        }
        let retry_after = ((window + 1) * self.window_secs).saturating_sub(now).max(1);
        let mut response = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "RATE_LIMITED",
            message: format!(
                "more than {} requests in {} s; retry after {retry_after} s",
                self.limit, self.window_secs
            ),
        }
        .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, retry_after.into());
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{delete_redis_keys, redis_url, unique_name};

    use super::*;

    fn limiter(url: &str, prefix: &str, limit: u64) -> RateLimiter {
        let conn = pulse_stream::connection::connect_lazy(url).expect("url");
        RateLimiter::new(conn, RedisKeys::new(prefix), limit, 60, false)
    }

    #[tokio::test]
    async fn over_the_limit_is_429_with_retry_after() {
        let prefix = unique_name("ratelimit");
        let limiter = limiter(&redis_url(), &prefix, 2);
        let remote = Some(SocketAddr::from(([192, 0, 2, 7], 5000)));
        let headers = HeaderMap::new();
        for _ in 0..2 {
            assert!(
                limiter
                    .check("/api/posts", remote, &headers)
                    .await
                    .is_none()
            );
        }
        // Paths outside /api are never counted.
        assert!(limiter.check("/health", remote, &headers).await.is_none());
        let refused = limiter
            .check("/api/posts", remote, &headers)
            .await
            .expect("the third request in the window is refused");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()[RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        delete_redis_keys(&prefix)
            .await
            .expect("delete the counters");
    }

    #[tokio::test]
    async fn requests_are_allowed_while_redis_is_down() {
        // Nothing listens on port 1.
        let limiter = limiter("redis://127.0.0.1:1", "pulse-test-down", 1);
        let remote = Some(SocketAddr::from(([192, 0, 2, 8], 5000)));
        for _ in 0..3 {
            assert!(
                limiter
                    .check("/api/posts", remote, &HeaderMap::new())
                    .await
                    .is_none()
            );
        }
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let remote = Some(SocketAddr::from(([10, 0, 0, 1], 5000)));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 10.0.0.2".parse().expect("h"),
        );
        assert_eq!(
            client_ip(remote, &headers, false),
            Some(IpAddr::from([10, 0, 0, 1]))
        );
        assert_eq!(
            client_ip(remote, &headers, true),
            Some(IpAddr::from([203, 0, 113, 9]))
        );
        headers.insert("x-forwarded-for", "garbage".parse().expect("h"));
        assert_eq!(
            client_ip(remote, &headers, true),
            Some(IpAddr::from([10, 0, 0, 1]))
        );
    }
}
