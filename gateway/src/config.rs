//! Command-line and environment configuration.

use std::{net::SocketAddr, path::PathBuf};

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

    /// Address of the admin endpoint (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9105")]
    pub admin_addr: SocketAddr,

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
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 5_000)]
    pub upstream_timeout_ms: u64,

    /// Redis holding the rate-limit counters; when unreachable, requests are not limited.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Prefix of every Redis key (`<prefix>:ratelimit:...`).
    #[arg(long, env = "STREAM_PREFIX", default_value = "pulse")]
    pub stream_prefix: String,

    /// Requests one client IP may make to /api per rate-limit window (0 disables limiting).
    #[arg(long, env = "RATE_LIMIT_REQUESTS", default_value_t = 600)]
    pub rate_limit_requests: u64,

    /// Length of the fixed rate-limit window, in seconds.
    #[arg(long, env = "RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    pub rate_limit_window_secs: u64,

    /// Take the client IP from the first X-Forwarded-For entry (only behind a trusted proxy).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Origins allowed by CORS, comma-separated; `*` allows any origin.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*")]
    pub cors_allowed_origins: String,

    /// Largest accepted request body, in bytes; larger bodies get 400 BODY_TOO_LARGE.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: u64,
}
