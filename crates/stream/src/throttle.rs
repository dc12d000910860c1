//! Rate limits shared by every gateway replica: the generic cell rate algorithm (GCRA) over one
//! Redis key per client.
//!
//! A limit of `n` requests per `period` lets a client spend `n` at once and then one every
//! `period / n`: a sliding allowance, with none of a fixed window's double burst at the
//! window's edge. The key holds the client's "theoretical arrival time" (TAT) in milliseconds
//! and expires when the allowance is full again, so idle clients cost nothing. The clock is
//! Redis's own (`TIME`), so replicas with skewed clocks agree.

use std::time::Duration;

use crate::{StreamError, connection::Connection};

/// KEYS[1]: the client's TAT; ARGV[1]: emission interval (period / n) in ms; ARGV[2]: n.
/// Returns {1, 0} when allowed, {0, ms until the next request is allowed} when not.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - interval * burst
if now < allowed_at + interval then
  return {0, allowed_at + interval - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, 0}
";

/// What the limiter decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; the next request is allowed after this long.
    Refused {
        retry_after: Duration,
    },
}

/// Spends one request of `limit` per `period` from the allowance at `key`.
pub async fn spend(
    conn: &Connection,
    key: &str,
    limit: u64,
    period: Duration,
) -> Result<Decision, StreamError> {
    let limit = limit.max(1);
    let interval_ms = (u64::try_from(period.as_millis()).unwrap_or(u64::MAX) / limit).max(1);
    let mut conn = conn.clone();
    let (allowed, wait_ms): (i64, i64) = redis::cmd("EVAL")
        .arg(GCRA_SCRIPT)
        .arg(1)
        .arg(key)
        .arg(interval_ms)
        .arg(limit)
        .query_async(&mut conn)
        .await?;
    Ok(if allowed == 1 {
        Decision::Allowed
    } else {
        Decision::Refused {
            retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
        }
    })
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{redis_url, unique_name};

    use super::*;
    use crate::{RedisKeys, connection::connect};

    #[tokio::test]
    async fn a_burst_of_the_limit_then_one_per_interval() -> Result<(), StreamError> {
        let conn = connect(&redis_url()).await?;
        let keys = RedisKeys::new(unique_name("throttle"));
        let key = keys.throttle("ip", "203.0.113.9");
        // 3 per 600 ms: three at once, then one every 200 ms.
        let period = Duration::from_millis(600);
        for _ in 0..3 {
            assert_eq!(spend(&conn, &key, 3, period).await?, Decision::Allowed);
        }
        let Decision::Refused { retry_after } = spend(&conn, &key, 3, period).await? else {
            panic!("the fourth request at once is refused");
        };
        assert!(
            retry_after > Duration::ZERO && retry_after <= Duration::from_millis(200),
            "{retry_after:?}"
        );
        // Another client has its own allowance.
        let other = keys.throttle("ip", "203.0.113.10");
        assert_eq!(spend(&conn, &other, 3, period).await?, Decision::Allowed);

        tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
        assert_eq!(spend(&conn, &key, 3, period).await?, Decision::Allowed);
        assert!(matches!(
            spend(&conn, &key, 3, period).await?,
            Decision::Refused { .. }
        ));

        // The key expires once the allowance is full again.
        let mut raw = conn.clone();
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await?;
        assert!((1..=800).contains(&ttl), "{ttl}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .arg(&other)
            .query_async(&mut raw)
            .await?;
        Ok(())
    }
}
