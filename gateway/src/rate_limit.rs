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

use pulse_stream::RedisKeys;
use redis::aio::ConnectionManager;
use warp::http::{HeaderMap, StatusCode, header::RETRY_AFTER};

use crate::envelope::ApiError;

/// Longest the limiter may delay a request before it is let through unchecked.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
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
        conn: ConnectionManager,
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
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.window_secs + 1)
            .ignore();
        let count = match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<(u64,)>(&mut conn))
            .await
        {
            Ok(Ok((count,))) => count,
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
    use super::*;

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
