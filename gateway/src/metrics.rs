//! The gateway's Prometheus metrics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Routes as metric labels: known API paths by name, everything else in two buckets, so
/// arbitrary URLs cannot blow up the label space.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/api/posts" => "/api/posts",
        "/api/posts/export.csv" => "/api/posts/export.csv",
        "/api/sentiment/distribution" => "/api/sentiment/distribution",
        "/api/sentiment/aggregate" => "/api/sentiment/aggregate",
        "/api/alerts" => "/api/alerts",
        "/api/insights/drivers" => "/api/insights/drivers",
        "/api/insights/entities" => "/api/insights/entities",
        "/api/analyze" => "/api/analyze",
        "/api/ws-ticket" => "/api/ws-ticket",
        "/api/health" => "/api/health",
        "/api/openapi.json" => "/api/openapi.json",
        "/ws/sentiment" => "/ws/sentiment",
        "/healthz" | "/readyz" => "probe",
        p if p.starts_with("/api") => "/api/other",
        _ => "static",
    }
}

#[derive(Clone)]
pub struct GatewayMetrics {
    pub requests: IntCounterVec,
    pub seconds: HistogramVec,
    pub websocket_connections: IntGauge,
}

impl GatewayMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "pulse_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "pulse_http_request_seconds",
                "HTTP request latency by route",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16)?),
            &["route"],
        )?;
        let websocket_connections =
            IntGauge::new("pulse_websocket_connections", "Open WebSocket connections")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(websocket_connections.clone()))?;
        Ok(Self {
            requests,
            seconds,
            websocket_connections,
        })
    }
}
