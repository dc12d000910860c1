//! Store errors, split by what a caller can do about them.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement failed for a reason retrying will not fix.
    #[error("database error: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("migration {version} ({name}) was changed after it was applied")]
    MigrationChanged { version: i64, name: String },
    #[error("the database has migration {0}, which this build does not know; refusing to run")]
    UnknownMigration(i64),
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
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Query(e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
