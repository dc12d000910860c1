//! Command-line and environment configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Every setting of `pulse-gateway`; each flag falls back to the environment variable named.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pulse-gateway",
    version,
    about = "REST, WebSocket and the dashboard over the Pulse services"
)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub admin: pulse_settings::AdminSettings,

    /// gRPC address of the analytics service.
    #[arg(long, env = "ANALYTICS_URL", default_value = "http://127.0.0.1:50052")]
    pub analytics_url: String,

    /// gRPC address of the inference service.
    #[arg(long, env = "INFERENCE_URL", default_value = "http://127.0.0.1:50051")]
    pub inference_url: String,

    /// gRPC address of the ingester.
    #[arg(long, env = "INGESTER_URL", default_value = "http://127.0.0.1:50053")]
    pub ingester_url: String,

    /// Directory of the built dashboard (index.html and assets).
    #[arg(long, env = "DASHBOARD_DIR", default_value = "dashboard/dist")]
    pub dashboard_dir: PathBuf,

    /// Deadline of every upstream gRPC call, in milliseconds.
    #[arg(
        long = "upstream-timeout-ms",
        env = "UPSTREAM_TIMEOUT_MS",
        value_name = "UPSTREAM_TIMEOUT_MS",
        default_value = "5000",
        value_parser = pulse_settings::duration::millis,
    )]
    pub upstream_timeout: Duration,

    #[command(flatten)]
    pub redis: pulse_settings::RedisSettings,

    /// Requests one client IP may make to /api per rate-limit window (0 disables limiting).
    #[arg(long, env = "RATE_LIMIT_REQUESTS", default_value_t = 600)]
    pub rate_limit_requests: u64,

    /// Length of the fixed rate-limit window, in seconds.
    #[arg(
        long = "rate-limit-window-secs",
        env = "RATE_LIMIT_WINDOW_SECS",
        value_name = "RATE_LIMIT_WINDOW_SECS",
        default_value = "60",
        value_parser = pulse_settings::duration::secs,
    )]
    pub rate_limit_window: Duration,

    /// Take the client IP from the first X-Forwarded-For entry (only behind a trusted proxy).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Origins allowed by CORS, comma-separated; `*` allows any origin.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*")]
    pub cors_allowed_origins: String,

    /// Largest accepted request body, in bytes; larger bodies get 400 BODY_TOO_LARGE.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: u64,

    /// Most rows one CSV export holds; the file ends there (its `X-Export-Row-Cap` header says
    /// how many rows it may hold) and a `limit` on the export may only lower it.
    #[arg(
        long,
        env = "EXPORT_MAX_ROWS",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    pub export_max_rows: u32,
}

impl Config {
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9105;

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }
}
