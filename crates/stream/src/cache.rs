//! A cache of bytes in Redis: values under a key named by [`RedisKeys`](crate::RedisKeys)
//! (`RedisKeys::cache` and the names built on it) that expire by themselves.
//!
//! These are single commands with no policy: the caller bounds how long it waits, and decides
//! what a failure means (for a cache, usually a miss).

use std::time::Duration;

use crate::{StreamError, connection::Connection};

/// The value stored at `key` (GET), or `None` when there is none.
pub async fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StreamError> {
    let mut conn = conn.clone();
    Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
}

/// Stores `value` at `key` for `ttl` (SET with PX, in milliseconds), replacing what was there.
pub async fn set_with_expiry(
    conn: &Connection,
    key: &str,
    value: &[u8],
    ttl: Duration,
) -> Result<(), StreamError> {
    let mut conn = conn.clone();
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{redis_url, unique_name};

    use super::*;
    use crate::{RedisKeys, connection::connect};

    #[tokio::test]
    async fn values_come_back_byte_for_byte_and_expire() -> Result<(), StreamError> {
        let conn = connect(&redis_url()).await?;
        let keys = RedisKeys::new(unique_name("cache"));
        let key = keys.distribution_cache("0123456789abcdef");
        assert_eq!(get(&conn, &key).await?, None);

        let value = b"[\"twitter\"]\n\x00\xff\x08".to_vec();
        set_with_expiry(&conn, &key, &value, Duration::from_secs(30)).await?;
        assert_eq!(get(&conn, &key).await?, Some(value));
        let mut raw = conn.clone();
        let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await?;
        assert!((1..=30_000).contains(&ttl_ms), "{ttl_ms}");

        set_with_expiry(&conn, &key, b"newer", Duration::from_millis(1)).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(get(&conn, &key).await?, None);
        Ok(())
    }
}
