//! Command-line and environment configuration.

use std::{net::SocketAddr, time::Duration};

use pulse_settings::ConnectionUrl;

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

    #[command(flatten)]
    pub admin: pulse_settings::AdminSettings,

    #[command(flatten)]
    pub database: pulse_settings::DatabaseSettings,

    /// PostgreSQL URL that the read queries use, such as a streaming replica's (its password is
    /// never printed). Unset: DATABASE_URL serves them. The alert monitor always works on
    /// DATABASE_URL.
    #[arg(
        id = "database_read_url",
        value_name = "DATABASE_READ_URL",
        long = "database-read-url",
        env = "DATABASE_READ_URL"
    )]
    pub database_read_url: Option<ConnectionUrl>,

    /// Longest a read statement may run before PostgreSQL cancels it, in milliseconds (0: no
    /// limit). Above the gateway's upstream deadline, a result would arrive for nobody.
    #[arg(
        long = "read-statement-timeout-ms",
        env = "READ_STATEMENT_TIMEOUT_MS",
        value_name = "READ_STATEMENT_TIMEOUT_MS",
        default_value = "5000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub read_statement_timeout: Duration,

    /// Most connections of the read pool; text searches have half as many (at least one) of
    /// their own. With DATABASE_READ_URL set, the pool on DATABASE_URL keeps at most
    /// [`Config::PRIMARY_POOL_SIZE_WITH_REPLICA`] of them.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: usize,

    #[command(flatten)]
    pub redis: pulse_settings::RedisSettings,

    /// Seconds between `metrics_update` events on WatchEvents.
    #[arg(
        long = "metrics-interval-secs",
        env = "METRICS_INTERVAL_SECS",
        value_name = "METRICS_INTERVAL_SECS",
        default_value = "30",
        value_parser = pulse_settings::duration::secs,
    )]
    pub metrics_interval: Duration,

    /// Seconds a distribution stays cached in Redis per distinct filter (0 disables the cache).
    #[arg(
        long = "distribution-cache-ttl-secs",
        env = "DISTRIBUTION_CACHE_TTL_SECS",
        value_name = "DISTRIBUTION_CACHE_TTL_SECS",
        default_value = "60",
        value_parser = pulse_settings::duration::secs,
    )]
    pub distribution_cache_ttl: Duration,

    /// Milliseconds a ListPosts total is reused per filter before it is recounted in the
    /// background (0 counts on every request). Pages themselves are always read fresh.
    #[arg(
        long = "list-total-ttl-ms",
        env = "LIST_TOTAL_TTL_MS",
        value_name = "LIST_TOTAL_TTL_MS",
        default_value = "2000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub list_total_ttl: Duration,

    /// Seconds between alert evaluations (0 disables the alert monitor).
    #[arg(
        long = "alert-interval-secs",
        env = "ALERT_INTERVAL_SECS",
        value_name = "ALERT_INTERVAL_SECS",
        default_value = "60",
        value_parser = pulse_settings::duration::secs,
    )]
    pub alert_interval: Duration,

    /// Length in seconds of the sliding window the alert rules look at.
    #[arg(
        long = "alert-window-secs",
        env = "ALERT_WINDOW_SECS",
        value_name = "ALERT_WINDOW_SECS",
        default_value = "300",
        value_parser = pulse_settings::duration::secs,
    )]
    pub alert_window: Duration,

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
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9102;

    /// Connections of the pool on DATABASE_URL when a replica serves the reads: it answers only
    /// the health check and the event feed's look-up of each new alert.
    pub const PRIMARY_POOL_SIZE_WITH_REPLICA: usize = 2;

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }

    /// The database of the read queries, when it is not DATABASE_URL's (an empty value counts
    /// as unset).
    pub fn read_url(&self) -> Option<&ConnectionUrl> {
        self.database_read_url
            .as_ref()
            .filter(|url| !url.expose().is_empty())
    }

    /// The interval between `metrics_update` events, at least a second.
    pub fn metrics_interval(&self) -> Duration {
        self.metrics_interval.max(Duration::from_secs(1))
    }

    /// The alert rules' settings.
    pub fn alert_rules(&self) -> crate::alerts::Rules {
        crate::alerts::Rules {
            window: chrono::Duration::from_std(self.alert_window.max(Duration::from_secs(1)))
                .unwrap_or(chrono::Duration::MAX),
            min_posts: self.alert_min_posts,
            negative_threshold: self.alert_negative_threshold,
            spike_stddevs: self.alert_spike_stddevs,
            baseline_windows: self.alert_baseline_windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_read_url_is_optional_and_its_password_never_printed() {
        let config = Config::parse_from(["pulse-analytics"]);
        assert!(config.read_url().is_none());
        let config = Config::parse_from([
            "pulse-analytics",
            "--database-read-url",
            "postgres://reader:s3cret@replica:5432/pulse",
        ]);
        let url = config.read_url().expect("set");
        assert_eq!(url.expose(), "postgres://reader:s3cret@replica:5432/pulse");
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
        let config = Config::parse_from(["pulse-analytics", "--database-read-url", ""]);
        assert!(config.read_url().is_none());
    }
}
