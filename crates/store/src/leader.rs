//! Leadership through a PostgreSQL session advisory lock.
//!
//! When several instances of a service run, jobs that must happen once (the alert monitor)
//! run only on the instance holding the lock. The lock lives as long as one dedicated
//! connection, outside the pool, so a crashed or partitioned leader loses it when its
//! connection ends and another instance takes over; the leader also runs its work on that
//! connection, so losing the connection and losing leadership are the same event.

use std::str::FromStr;

use tokio_postgres::NoTls;

/// The session's client type; the store's query functions take it.
pub use tokio_postgres::Client;

use crate::StoreError;

/// A dedicated session that may hold an advisory lock.
pub struct LeaderSession {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderSession {
    /// Opens a session to `url`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config.application_name("pulse-leader");
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "leader session ended");
            }
        });
        Ok(Self { client, task })
    }

    /// Takes the lock `key` without waiting; true when this session holds it (again).
    pub async fn try_lock(&self, key: i64) -> Result<bool, StoreError> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?;
        Ok(row.get(0))
    }

    /// True once the connection is gone (and with it any lock).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The session's client, for work done while holding the lock.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Drop for LeaderSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}
