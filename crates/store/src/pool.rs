//! The connection pool.
//!
//! Connections are created lazily and checked on checkout, so a service starts while the
//! database is down and recovers by itself when it returns.

use std::{str::FromStr, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::StoreError;

pub use deadpool_postgres::{Client, Pool};

/// How long a caller waits for a connection before the database counts as unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a pool of at most `max_size` connections to `url`.
pub fn connect_pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    build(url, max_size, None)
}

/// A pool for reads that answer a caller who is waiting: PostgreSQL cancels any statement that
/// runs longer than `statement_timeout` (SQLSTATE 57014, [`StoreError::is_timeout`]), so a
/// query whose caller has long given up does not keep a connection and a core busy. Zero means
/// no limit.
pub fn connect_read_pool(
    url: &str,
    max_size: usize,
    statement_timeout: Duration,
) -> Result<Pool, StoreError> {
    build(
        url,
        max_size,
        Some(statement_timeout).filter(|t| !t.is_zero()),
    )
}

fn build(
    url: &str,
    max_size: usize,
    statement_timeout: Option<Duration>,
) -> Result<Pool, StoreError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CHECKOUT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("pulse");
    }
    // Statements are prepared once per connection and reused, but the read queries' optional
    // filters (`$1 IS NULL OR p.source = $1`) only get index plans when planned for the actual
    // values, so every execution is planned for its values.
    let mut options = config.get_options().map_or_else(
        || "-c plan_cache_mode=force_custom_plan".to_owned(),
        str::to_owned,
    );
    if let Some(timeout) = statement_timeout {
        options.push_str(&format!(
            " -c statement_timeout={}",
            timeout.as_millis().max(1)
        ));
    }
    config.options(&options);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CHECKOUT_TIMEOUT))
        .create_timeout(Some(CHECKOUT_TIMEOUT))
        .recycle_timeout(Some(CHECKOUT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::InvalidUrl(e.to_string()))
}

/// Checks that a connection can be made and answers.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}
