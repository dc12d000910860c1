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

    #[command(flatten)]
    pub inference: pulse_settings::InferenceSettings,

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

    #[command(flatten)]
    pub database: pulse_settings::DatabaseSettings,

    /// Let callers without a key read (GET /api/*, the live feed), as a public wall dashboard
    /// needs; publishing and analysing still need a key with their scope.
    #[arg(long, env = "PUBLIC_READS", default_value_t = false)]
    pub public_reads: bool,

    /// How long a key lookup (found or not) is reused, in seconds: also how long a revoked key
    /// may still be accepted.
    #[arg(
        long = "auth-cache-secs",
        env = "AUTH_CACHE_SECS",
        value_name = "AUTH_CACHE_SECS",
        default_value = "30",
        value_parser = pulse_settings::duration::secs,
    )]
    pub auth_cache: Duration,

    /// Requests one client address (an IPv4 address, an IPv6 /64) may make to /api per
    /// rate-limit window, as a burst or spread out (0 disables this limit).
    #[arg(long, env = "RATE_LIMIT_REQUESTS", default_value_t = 600)]
    pub rate_limit_requests: u64,

    /// Requests one API key may make per rate-limit window, from all its addresses together
    /// (0 disables this limit).
    #[arg(long, env = "RATE_LIMIT_KEY_REQUESTS", default_value_t = 1_200)]
    pub rate_limit_key_requests: u64,

    /// The rate-limit window, in seconds: a limit of n allows n at once, then one every
    /// window / n.
    #[arg(
        long = "rate-limit-window-secs",
        env = "RATE_LIMIT_WINDOW_SECS",
        value_name = "RATE_LIMIT_WINDOW_SECS",
        default_value = "60",
        value_parser = pulse_settings::duration::secs,
    )]
    pub rate_limit_window: Duration,

    /// Proxies in front of the gateway that append to X-Forwarded-For (an ingress: 1). The
    /// client is the rightmost address they did not write; 0 uses the socket's peer.
    #[arg(long, env = "TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,

    /// Origins of other sites whose pages may call the API and open the live feed,
    /// comma-separated; empty allows the gateway's own pages only, `*` any page.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: String,

    /// Most open WebSocket connections on this replica.
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub ws_max_connections: usize,

    /// Most open WebSocket connections of one client address (an IPv4 address, an IPv6 /64).
    #[arg(long, env = "WS_MAX_PER_CLIENT", default_value_t = 20)]
    pub ws_max_per_client: usize,

    /// Seconds a WebSocket client may stay silent (not even answering pings) before it is
    /// closed.
    #[arg(
        long = "ws-idle-timeout-secs",
        env = "WS_IDLE_TIMEOUT_SECS",
        value_name = "WS_IDLE_TIMEOUT_SECS",
        default_value = "90",
        value_parser = pulse_settings::duration::secs,
    )]
    pub ws_idle_timeout: Duration,

    /// Seconds one message may take to reach a WebSocket client before it is closed as too
    /// slow a reader.
    #[arg(
        long = "ws-send-timeout-secs",
        env = "WS_SEND_TIMEOUT_SECS",
        value_name = "WS_SEND_TIMEOUT_SECS",
        default_value = "10",
        value_parser = pulse_settings::duration::secs,
    )]
    pub ws_send_timeout: Duration,

    /// Seconds a WebSocket ticket (POST /api/ws-ticket) stays valid.
    #[arg(
        long = "ws-ticket-secs",
        env = "WS_TICKET_SECS",
        value_name = "WS_TICKET_SECS",
        default_value = "30",
        value_parser = pulse_settings::duration::secs,
    )]
    pub ws_ticket: Duration,

    /// Hours a publish's answer is kept for retries with the same Idempotency-Key.
    #[arg(
        long = "idempotency-hours",
        env = "IDEMPOTENCY_HOURS",
        value_name = "IDEMPOTENCY_HOURS",
        default_value = "24",
        value_parser = pulse_settings::duration::hours,
    )]
    pub idempotency: Duration,

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

    /// Most CSV exports this replica streams at once; more get 429 EXPORT_BUSY.
    #[arg(
        long,
        env = "EXPORT_MAX_CONCURRENT",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    pub export_max_concurrent: u32,
}

impl Config {
    /// Default port of the admin endpoint.
    pub const ADMIN_PORT: u16 = 9105;

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr_or(Self::ADMIN_PORT)
    }
}
