//! Fixed-window counters in Redis, such as the per-client request counters of the rate limiter
//! (keys from [`RedisKeys::rate_limit`](crate::RedisKeys::rate_limit)): one key per window,
//! counted up and left to expire.

use crate::{StreamError, connection::Connection};

/// Adds one to the counter at `key` and (re)sets its expiry to `expire_secs` seconds, in one
/// round trip (INCR and EXPIRE in a pipeline); returns the count after this increment.
pub async fn increment(conn: &Connection, key: &str, expire_secs: u64) -> Result<u64, StreamError> {
    let mut conn = conn.clone();
    let mut pipe = redis::pipe();
    pipe.cmd("INCR")
        .arg(key)
        .cmd("EXPIRE")
        .arg(key)
        .arg(expire_secs)
        .ignore();
    let (count,): (u64,) = pipe.query_async(&mut conn).await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{redis_url, unique_name};

    use super::*;
    use crate::{RedisKeys, connection::connect};

    #[tokio::test]
    async fn counts_up_and_expires() -> Result<(), StreamError> {
        let conn = connect(&redis_url()).await?;
        let keys = RedisKeys::new(unique_name("counters"));
        let key = keys.rate_limit("203.0.113.9", 42);
        assert_eq!(increment(&conn, &key, 61).await?, 1);
        assert_eq!(increment(&conn, &key, 61).await?, 2);
        assert_eq!(
            increment(&conn, &keys.rate_limit("203.0.113.9", 43), 61).await?,
            1
        );
        let mut raw = conn.clone();
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut raw).await?;
        assert!((1..=61).contains(&ttl), "{ttl}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .arg(keys.rate_limit("203.0.113.9", 43))
            .query_async(&mut raw)
            .await?;
        Ok(())
    }
}
