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
    build(url, max_size, "", None)
}

/// A pool for reads that answer a caller who is waiting: PostgreSQL cancels any statement that
/// runs longer than `statement_timeout` (SQLSTATE 57014, [`StoreError::is_timeout`]), so a
/// query whose caller has long given up does not keep a connection and a core busy. Zero means
/// no limit.
///
/// Its prepared statements are planned once and the plan reused (`plan_cache_mode =
/// force_generic_plan`): each read is written with only the filters it sets (see
/// `query::Binds`), so one plan serves every value, and planning a read over the partitioned
/// tables costs more than running it (about 1 ms against 0.3 ms for a page of posts). JIT
/// compilation is off: a generic plan's cost is estimated without the page size, and compiling
/// it took 20 ms to save microseconds. Text searches need a plan for their term: they go to
/// [`connect_search_pool`].
pub fn connect_read_pool(
    url: &str,
    max_size: usize,
    statement_timeout: Duration,
) -> Result<Pool, StoreError> {
    build(
        url,
        max_size,
        "-c plan_cache_mode=force_generic_plan -c jit=off",
        Some(statement_timeout).filter(|t| !t.is_zero()),
    )
}

/// A pool for reads with a text search, planned for their values each time: whether the
/// trigram index (a rare term) or a walk of the newest posts (a common one) is cheaper depends
/// on the term. Kept apart from [`connect_read_pool`]'s connections, searches also cannot take
/// every connection from the charts. Each search runs in one process: the service runs many
/// at once, and starting parallel workers for each cost more than they saved (a search without
/// a match over 10M posts: 86 requests/s with them, 220 without, on two cores).
/// `statement_timeout` as there.
pub fn connect_search_pool(
    url: &str,
    max_size: usize,
    statement_timeout: Duration,
) -> Result<Pool, StoreError> {
    build(
        url,
        max_size,
        "-c plan_cache_mode=force_custom_plan -c max_parallel_workers_per_gather=0",
        Some(statement_timeout).filter(|t| !t.is_zero()),
    )
}

/// Builds a pool whose sessions start with `settings` (`-c name=value ...`; the URL's own
/// `options` take precedence) and `statement_timeout`.
fn build(
    url: &str,
    max_size: usize,
    settings: &str,
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
    let mut options = format!("{settings} {}", config.get_options().unwrap_or_default());
    if let Some(timeout) = statement_timeout {
        options.push_str(&format!(
            " -c statement_timeout={}",
            timeout.as_millis().max(1)
        ));
    }
    if !options.trim().is_empty() {
        config.options(options.trim());
    }
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
