//! The test Redis. A test keeps its keys under a prefix of its own ([`crate::unique_name`])
//! and deletes them at the end.

use anyhow::Context;

/// The variable naming the test Redis.
pub const REDIS_ENV: &str = "TEST_REDIS_URL";

const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// The Redis the tests use: `TEST_REDIS_URL`, or the local one.
pub fn redis_url() -> String {
    crate::logs();
    std::env::var(REDIS_ENV)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS.to_owned())
}

/// Deletes every key under a test's prefix: streams, dead letters, events, cache entries and
/// rate-limit counters (all `<prefix>:...`).
pub async fn delete_redis_keys(prefix: &str) -> anyhow::Result<()> {
    let url = redis_url();
    let client = ::redis::Client::open(url.as_str())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to the test Redis {url} ({REDIS_ENV})"))?;
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        let _: () = ::redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    Ok(())
}
