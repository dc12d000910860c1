//! The Redis cache of `GetDistribution`, one entry per distinct filter.
//!
//! An entry is the canonical text of the filter followed by the encoded response; the key is a
//! digest of that text, and a read checks the stored text, so two filters whose digests collide
//! can never be served each other's numbers. Redis is an optimisation here: every cache failure
//! (Redis down, slow, or an entry that does not decode) counts as a miss and the answer comes
//! from PostgreSQL.

use std::time::Duration;

use prost::Message;
use pulse_proto::v1::GetDistributionResponse;
use pulse_store::PostQuery;
use pulse_stream::{Connection, RedisKeys};

use crate::metrics::AnalyticsMetrics;

/// Longest a cache read or write may take before it counts as failed.
const CACHE_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct DistributionCache {
    conn: Connection,
    keys: RedisKeys,
    ttl: Duration,
    metrics: AnalyticsMetrics,
}

/// A stable, unambiguous text of the filter (JSON escapes every value).
pub fn canonical(query: &PostQuery, by_source: bool) -> String {
    serde_json::json!([
        query.source,
        query.sentiment,
        query.emotion,
        query.search,
        query.author,
        query.from.map(|t| t.timestamp_micros()),
        query.to.map(|t| t.timestamp_micros()),
        by_source,
    ])
    .to_string()
}

/// FNV-1a 64: a short key name; collisions are harmless (see the module docs).
fn digest(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn encode(canonical: &str, response: &GetDistributionResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 1 + response.encoded_len());
    out.extend_from_slice(canonical.as_bytes());
    out.push(b'\n');
    response.encode(&mut out).unwrap_or_default();
    out
}

fn decode(canonical: &str, bytes: &[u8]) -> Option<GetDistributionResponse> {
    let rest = bytes
        .strip_prefix(canonical.as_bytes())?
        .strip_prefix(b"\n")?;
    GetDistributionResponse::decode(rest).ok()
}

impl DistributionCache {
    pub fn new(
        conn: Connection,
        keys: RedisKeys,
        ttl: Duration,
        metrics: AnalyticsMetrics,
    ) -> Self {
        Self {
            conn,
            keys,
            ttl,
            metrics,
        }
    }

    /// The cached answer for this filter, marked `cached`, or `None` (a miss or a failure).
    pub async fn get(&self, query: &PostQuery, by_source: bool) -> Option<GetDistributionResponse> {
        if self.ttl.is_zero() {
            return None;
        }
        let canonical = canonical(query, by_source);
        let key = self.keys.distribution_cache(&digest(&canonical));
        let read =
            tokio::time::timeout(CACHE_TIMEOUT, pulse_stream::cache::get(&self.conn, &key)).await;
        match read {
            Ok(Ok(Some(bytes))) => {
                if let Some(mut hit) = decode(&canonical, &bytes) {
                    self.metrics.cache_hits.inc();
                    hit.cached = true;
                    return Some(hit);
                }
                tracing::warn!(%key, "ignoring an undecodable cache entry");
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.metrics.cache_errors.inc();
                tracing::warn!(error = %e, "distribution cache unavailable; using the database");
            }
            Err(_) => {
                self.metrics.cache_errors.inc();
                tracing::warn!("distribution cache timed out; using the database");
            }
        }
        self.metrics.cache_misses.inc();
        None
    }

    /// Stores the answer for this filter for the TTL; failures are logged and ignored.
    pub async fn put(
        &self,
        query: &PostQuery,
        by_source: bool,
        response: &GetDistributionResponse,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let canonical = canonical(query, by_source);
        let key = self.keys.distribution_cache(&digest(&canonical));
        let value = encode(&canonical, response);
        let write = tokio::time::timeout(
            CACHE_TIMEOUT,
            pulse_stream::cache::set_with_expiry(&self.conn, &key, &value, self.ttl),
        )
        .await;
        if !matches!(write, Ok(Ok(()))) {
            self.metrics.cache_errors.inc();
            tracing::debug!(%key, "could not store a distribution in the cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_only_decode_for_their_own_filter() {
        let a = PostQuery {
            source: Some("twitter".into()),
            ..PostQuery::default()
        };
        let b = PostQuery {
            search: Some("twitter".into()),
            ..PostQuery::default()
        };
        let (ca, cb) = (canonical(&a, false), canonical(&b, false));
        assert_ne!(ca, cb);
        assert_ne!(ca, canonical(&a, true));
        let response = GetDistributionResponse {
            total: 7,
            ..GetDistributionResponse::default()
        };
        let bytes = encode(&ca, &response);
        assert_eq!(decode(&ca, &bytes).map(|r| r.total), Some(7));
        assert!(decode(&cb, &bytes).is_none());
        assert_eq!(digest(&ca), digest(&ca));
    }
}
