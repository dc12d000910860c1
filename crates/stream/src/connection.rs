//! Redis connections that reconnect by themselves.
//!
//! A `ConnectionManager` re-establishes a broken connection on the next command, so callers
//! only need to retry. Blocking reads (`XREADGROUP BLOCK`, `XREAD BLOCK`) get their own
//! connection with a response timeout longer than the block, because a multiplexed connection
//! answers in order and a blocked read would delay every other command on it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::StreamError;

/// Response timeout for ordinary commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects with the response timeout suited to ordinary commands.
pub async fn connect(url: &str) -> Result<ConnectionManager, StreamError> {
    connect_with_timeout(url, COMMAND_TIMEOUT).await
}

/// Connects for blocking reads of up to `block`.
pub async fn connect_blocking(
    url: &str,
    block: Duration,
) -> Result<ConnectionManager, StreamError> {
    connect_with_timeout(url, block + COMMAND_TIMEOUT).await
}

/// A connection that is made on first use instead of now, so a service whose Redis use is
/// optional (a cache) starts while Redis is down; each command fails fast until it is back.
pub fn connect_lazy(url: &str) -> Result<ConnectionManager, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::InvalidUrl(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

async fn connect_with_timeout(
    url: &str,
    response_timeout: Duration,
) -> Result<ConnectionManager, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::InvalidUrl(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}
