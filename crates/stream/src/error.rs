//! Stream errors.

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("invalid redis url: {0}")]
    InvalidUrl(String),
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
}

impl StreamError {
    /// True when Redis could not be reached (retry later) rather than refusing a command.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StreamError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            _ => false,
        }
    }
}
