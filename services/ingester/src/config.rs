//! Command-line and environment configuration.

use std::net::SocketAddr;

/// Every setting of `pulse-ingester`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-ingester",
    version,
    about = "Publishes posts to the Pulse stream"
)]
pub struct Config {
    /// Address the IngestService gRPC server listens on.
    #[arg(long, env = "INGESTER_ADDR", default_value = "0.0.0.0:50053")]
    pub addr: SocketAddr,

    /// Address of the admin endpoint (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9103")]
    pub admin_addr: SocketAddr,

    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Prefix of every Redis key (`<prefix>:posts`, ...).
    #[arg(long, env = "STREAM_PREFIX", default_value = "pulse")]
    pub stream_prefix: String,

    /// Approximate cap on the posts stream's length (XADD MAXLEN ~).
    #[arg(long, env = "STREAM_MAX_LEN", default_value_t = pulse_stream::producer::DEFAULT_MAX_LEN)]
    pub stream_max_len: usize,

    /// Synthetic posts generated per minute; 0 turns the generator off.
    #[arg(long, env = "POSTS_PER_MINUTE", default_value_t = 60)]
    pub posts_per_minute: u32,

    /// Most posts accepted in one Publish call.
    #[arg(long, env = "MAX_PUBLISH_BATCH", default_value_t = 500)]
    pub max_publish_batch: usize,
}
