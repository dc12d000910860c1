//! Store errors, split by what a caller can do about them.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement failed for a reason retrying will not fix.
    #[error("database error: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("migration {version} ({name}) was changed after it was applied")]
    MigrationChanged { version: i64, name: String },
    #[error("the database has migration {0}, which this build does not know; refusing to run")]
    UnknownMigration(i64),
    /// A batch held analyses of posts that are neither in the batch nor stored.
    #[error("{0} analyses name posts that are not stored")]
    AnalysisWithoutPost(u64),
}

/// The server's own message when there is one (tokio-postgres shows only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// True when the failure is about reaching the database rather than about the statement.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(e) => e.is_closed() || e.code().is_none(),
            _ => false,
        }
    }

    /// True when PostgreSQL cancelled the statement for running past its `statement_timeout`
    /// (SQLSTATE 57014, also used for a cancel request).
    pub fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED))
    }

    /// True when a row arrived for a day without a partition (SQLSTATE 23514, "no partition of
    /// relation ... found for row"): the rows are fine, the maintenance that creates partitions
    /// ahead has not run; retrying after it does succeeds.
    pub fn is_missing_partition(&self) -> bool {
        matches!(self, StoreError::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
            && e.as_db_error().is_some_and(|db| db.message().starts_with("no partition of relation")))
    }

    /// True when trying the same statement again later may succeed: the database is
    /// unreachable, or it refused for a reason of its own state (SQLSTATE classes 08 connection,
    /// 40 rollback such as deadlocks, 42 undefined objects such as a missing migration, 53
    /// resources, 55 object state, 57 operator intervention, 58 system). Errors about the data
    /// itself (22 data exception, 23 constraint violation) are not transient: the same rows
    /// fail the same way every time.
    pub fn is_transient(&self) -> bool {
        if self.is_unavailable() || self.is_missing_partition() {
            return true;
        }
        match self {
            StoreError::Query(e) => e
                .code()
                .is_none_or(|code| !matches!(code.code().get(..2), Some("22" | "23"))),
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Query(e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
