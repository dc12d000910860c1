//! Command-line and environment configuration.

use std::{net::SocketAddr, time::Duration};

/// Every setting of `pulse-analytics`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-analytics",
    version,
    about = "Queries and live events over analysed posts"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ANALYTICS_ADDR", default_value = "0.0.0.0:50052")]
    pub addr: SocketAddr,

    /// Address of the admin endpoint (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9102")]
    pub admin_addr: SocketAddr,

    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/pulse"
    )]
    pub database_url: String,

    /// Most database connections this service opens.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: usize,

    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Prefix of every Redis key (`<prefix>:events`, ...).
    #[arg(long, env = "STREAM_PREFIX", default_value = "pulse")]
    pub stream_prefix: String,

    /// Seconds between `metrics_update` events on WatchEvents.
    #[arg(long, env = "METRICS_INTERVAL_SECS", default_value_t = 30)]
    pub metrics_interval_secs: u64,
}

impl Config {
    pub fn metrics_interval(&self) -> Duration {
        Duration::from_secs(self.metrics_interval_secs.max(1))
    }
}
