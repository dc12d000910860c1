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
}
