//! Command-line and environment configuration.

use std::{net::SocketAddr, time::Duration};

/// Every setting of `pulse-worker`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-worker",
    version,
    about = "Analyses posts from the Pulse stream into PostgreSQL"
)]
pub struct Config {
    /// Address of the admin endpoint (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9104")]
    pub admin_addr: SocketAddr,

    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/pulse"
    )]
    pub database_url: String,

    /// Most database connections this worker opens.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 4)]
    pub database_pool_size: usize,

    /// gRPC address of the inference service.
    #[arg(long, env = "INFERENCE_URL", default_value = "http://127.0.0.1:50051")]
    pub inference_url: String,

    /// Prefix of every Redis key (`<prefix>:posts`, ...).
    #[arg(long, env = "STREAM_PREFIX", default_value = "pulse")]
    pub stream_prefix: String,

    /// Name of this consumer in the group; unique per instance (defaults to host-pid).
    #[arg(long, env = "CONSUMER_NAME")]
    pub consumer_name: Option<String>,

    /// Entries read and analysed together.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 10)]
    pub batch_size: usize,

    /// How long one read waits for new entries, in milliseconds.
    #[arg(long, env = "BLOCK_MS", default_value_t = 1_000)]
    pub block_ms: u64,

    /// Idle time after which another consumer's pending entry is taken over, in seconds.
    /// Must exceed the longest batch (inference timeout + database write).
    #[arg(long, env = "CLAIM_IDLE_SECS", default_value_t = 60)]
    pub claim_idle_secs: u64,

    /// Deliveries after which an entry is dead-lettered instead of retried.
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,

    /// Deadline of one AnalyzeBatch call, in milliseconds.
    #[arg(long, env = "INFERENCE_TIMEOUT_MS", default_value_t = 10_000)]
    pub inference_timeout_ms: u64,

    /// Approximate cap on the events stream's length.
    #[arg(long, env = "EVENTS_MAX_LEN", default_value_t = pulse_stream::events::DEFAULT_EVENTS_MAX_LEN)]
    pub events_max_len: usize,
}

impl Config {
    pub fn consumer_name(&self) -> String {
        self.consumer_name.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms)
    }

    pub fn claim_idle(&self) -> Duration {
        Duration::from_secs(self.claim_idle_secs)
    }
}
