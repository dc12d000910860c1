//! The ingester's Prometheus metrics.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct IngesterMetrics {
    /// Posts appended to the stream, by origin (`generator`, `publish`).
    pub posts_ingested: IntCounterVec,
    /// Posts refused by validation, by error code.
    pub posts_rejected: IntCounterVec,
    /// Appends that failed because Redis could not take them, by origin.
    pub publish_failures: IntCounterVec,
    pub stream_length: IntGauge,
}

impl IngesterMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let vec = |name: &str, help: &str, label: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let stream_length = IntGauge::new("pulse_stream_length", "Entries in the posts stream")?;
        registry.register(Box::new(stream_length.clone()))?;
        Ok(Self {
            posts_ingested: vec(
                "pulse_ingester_posts_ingested_total",
                "Posts appended to the stream",
                "origin",
            )?,
            posts_rejected: vec(
                "pulse_ingester_posts_rejected_total",
                "Posts refused by validation",
                "code",
            )?,
            publish_failures: vec(
                "pulse_ingester_publish_failures_total",
                "Appends Redis did not take",
                "origin",
            )?,
            stream_length,
        })
    }
}
