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

    /// Seconds a distribution stays cached in Redis per distinct filter (0 disables the cache).
    #[arg(long, env = "DISTRIBUTION_CACHE_TTL_SECS", default_value_t = 60)]
    pub distribution_cache_ttl_secs: u64,

    /// Milliseconds a ListPosts total is reused per filter before it is recounted in the
    /// background (0 counts on every request). Pages themselves are always read fresh.
    #[arg(long, env = "LIST_TOTAL_TTL_MS", default_value_t = 2_000)]
    pub list_total_ttl_ms: u64,

    /// Seconds between alert evaluations (0 disables the alert monitor).
    #[arg(long, env = "ALERT_INTERVAL_SECS", default_value_t = 60)]
    pub alert_interval_secs: u64,

    /// Length in seconds of the sliding window the alert rules look at.
    #[arg(long, env = "ALERT_WINDOW_SECS", default_value_t = 300)]
    pub alert_window_secs: u64,

    /// Fewest posts in the window before any rule may fire, so a handful of posts cannot alert.
    #[arg(long, env = "ALERT_MIN_POSTS", default_value_t = 20)]
    pub alert_min_posts: u64,

    /// Share of negative posts (0..1) over which the negative-sentiment alert fires.
    #[arg(long, env = "ALERT_NEGATIVE_THRESHOLD", default_value_t = 0.5)]
    pub alert_negative_threshold: f64,

    /// Standard deviations over the baseline mean at which a window's volume is a spike.
    #[arg(long, env = "ALERT_SPIKE_STDDEVS", default_value_t = 3.0)]
    pub alert_spike_stddevs: f64,

    /// Windows before the current one that form the volume baseline.
    #[arg(long, env = "ALERT_BASELINE_WINDOWS", default_value_t = 12)]
    pub alert_baseline_windows: u32,
}

impl Config {
    pub fn metrics_interval(&self) -> Duration {
        Duration::from_secs(self.metrics_interval_secs.max(1))
    }

    /// The alert rules' settings.
    pub fn alert_rules(&self) -> crate::alerts::Rules {
        crate::alerts::Rules {
            window: chrono::Duration::seconds(
                i64::try_from(self.alert_window_secs.max(1)).unwrap_or(i64::MAX / 1_000_000),
            ),
            min_posts: self.alert_min_posts,
            negative_threshold: self.alert_negative_threshold,
            spike_stddevs: self.alert_spike_stddevs,
            baseline_windows: self.alert_baseline_windows,
        }
    }
}
