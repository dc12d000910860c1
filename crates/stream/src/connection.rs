//! Redis connections that reconnect by themselves.
//!
//! A `ConnectionManager` re-establishes a broken connection on the next command, so callers
//! only need to retry. Blocking reads (`XREADGROUP BLOCK`, `XREAD BLOCK`) get their own
//! connection with a response timeout longer than the block, because a multiplexed connection
//! answers in order and a blocked read would delay every other command on it.
//!
//! Callers hold a [`Connection`] and hand it to the types of this crate; none of them names
//! `redis::` itself.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::StreamError;

/// A Redis connection that reconnects by itself; cheap to clone (clones share it).
pub type Connection = ConnectionManager;

/// Response timeout for ordinary commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects with the response timeout suited to ordinary commands.
pub async fn connect(url: &str) -> Result<Connection, StreamError> {
    connect_with_timeout(url, COMMAND_TIMEOUT).await
}

/// Connects for blocking reads of up to `block`.
pub async fn connect_blocking(url: &str, block: Duration) -> Result<Connection, StreamError> {
    connect_with_timeout(url, block + COMMAND_TIMEOUT).await
}

/// A connection that is made on first use instead of now, so a service whose Redis use is
/// optional (a cache) starts while Redis is down; each command fails fast until it is back.
pub fn connect_lazy(url: &str) -> Result<Connection, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::InvalidUrl(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

/// Asks Redis whether it answers (PING); the connection's response timeout bounds the wait.
pub async fn ping(conn: &Connection) -> Result<(), StreamError> {
    let mut conn = conn.clone();
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}

async fn connect_with_timeout(
    url: &str,
    response_timeout: Duration,
) -> Result<Connection, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::InvalidUrl(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ping_answers_or_says_redis_is_unavailable() -> Result<(), StreamError> {
        ping(&connect(&pulse_testkit::redis_url()).await?).await?;
        // Nothing listens on port 1: a lazy connection is made, and its ping fails fast.
        let down = connect_lazy("redis://127.0.0.1:1")?;
        let err = ping(&down).await.expect_err("nothing listens on port 1");
        assert!(err.is_unavailable(), "{err}");
        Ok(())
    }
}
