//! The setting groups that several binaries share, each with one flag name, one environment
//! variable and one default.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::ConnectionUrl;

/// Where PostgreSQL is. The pool size is each service's own setting: its default differs.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL (its password is never printed).
    #[arg(
        id = "database_url",
        value_name = "DATABASE_URL",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/pulse"
    )]
    pub url: ConnectionUrl,
}

/// Where Redis is, and the prefix of every key Pulse keeps there.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisSettings {
    /// Redis connection URL (its password is never printed).
    #[arg(
        id = "redis_url",
        value_name = "REDIS_URL",
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub url: ConnectionUrl,

    /// Prefix of every Redis key (`<prefix>:posts`, `<prefix>:events`, ...): one per deployment
    /// sharing a Redis.
    #[arg(
        id = "stream_prefix",
        value_name = "STREAM_PREFIX",
        long = "stream-prefix",
        env = "STREAM_PREFIX",
        default_value = "pulse"
    )]
    pub prefix: String,
}

/// Where the inference service is, for its clients (the worker, and the gateway's analyse
/// route): calls are balanced over every address (`pulse_runtime::balanced_channel`).
#[derive(Debug, Clone, clap::Args)]
pub struct InferenceSettings {
    /// gRPC address of the inference service; several comma-separated, and every address a
    /// name resolves to, share the calls (in Kubernetes the headless Service `inference-pods`).
    #[arg(
        id = "inference_url",
        value_name = "INFERENCE_URL",
        long = "inference-url",
        env = "INFERENCE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub url: String,

    /// Seconds between resolutions of INFERENCE_URL's host names, following inference pods
    /// as they come and go.
    #[arg(
        id = "inference_resolve",
        value_name = "INFERENCE_RESOLVE_SECS",
        long = "inference-resolve-secs",
        env = "INFERENCE_RESOLVE_SECS",
        default_value = "30",
        value_parser = crate::duration::secs,
    )]
    pub resolve: Duration,
}

/// How long stored data is kept, and how far ahead its week partitions are created. Read by the
/// worker (which maintains the partitions every hour) and by `pulse-store maintain`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RetentionSettings {
    /// Days of posts, analyses and minute rollups, by arrival; a week is dropped whole once it
    /// has ended before the cutoff's Monday (0 keeps everything).
    #[arg(
        id = "retention_days",
        value_name = "RETENTION_DAYS",
        long = "retention-days",
        env = "RETENTION_DAYS",
        default_value_t = 30
    )]
    pub raw_days: u32,

    /// Days of hour and day rollups, which keep long-range charts and distributions after the posts
    /// are gone (0 keeps everything).
    #[arg(
        id = "rollup_retention_days",
        value_name = "ROLLUP_RETENTION_DAYS",
        long = "rollup-retention-days",
        env = "ROLLUP_RETENTION_DAYS",
        default_value_t = 400
    )]
    pub rollup_days: u32,

    /// Days ahead whose partitions exist at all times: writes keep working for that long if
    /// maintenance stops.
    #[arg(
        id = "partitions_ahead_days",
        value_name = "PARTITIONS_AHEAD_DAYS",
        long = "partitions-ahead-days",
        env = "PARTITIONS_AHEAD_DAYS",
        default_value_t = 7
    )]
    pub ahead_days: u32,
}

/// The admin endpoint (/metrics, /healthz, /readyz).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminSettings {
    /// Address of the admin endpoint; each service has its own default port (9101-9105).
    #[arg(
        id = "admin_addr",
        value_name = "ADMIN_ADDR",
        long = "admin-addr",
        env = "ADMIN_ADDR"
    )]
    pub addr: Option<SocketAddr>,
}

impl AdminSettings {
    /// The configured address, or `0.0.0.0:<default_port>`.
    pub fn addr_or(&self, default_port: u16) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, default_port)))
    }
}
