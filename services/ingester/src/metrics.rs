//! The ingester's Prometheus metrics.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct IngesterMetrics {
    /// Posts appended to the stream, by origin (`generator`, `publish`).
    pub posts_ingested: IntCounterVec,
    /// Posts refused by validation, by error code.
    pub posts_rejected: IntCounterVec,
    /// Appends that failed because Redis could not take them, by origin.
    pub publish_failures: IntCounterVec,
    pub stream_length: IntGauge,
    /// Entries the workers have not finished, as last measured.
    pub backlog: IntGauge,
    /// 1 while publishing is paused by backpressure.
    pub backpressure_paused: IntGauge,
    pub backpressure_pauses: IntCounter,
    /// Publish calls refused because of backpressure.
    pub publish_throttled: IntCounter,
}

impl IngesterMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let vec = |name: &str, help: &str, label: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
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
            stream_length: gauge("pulse_stream_length", "Entries in the posts stream")?,
            backlog: gauge(
                "pulse_ingester_backlog",
                "Entries of the posts stream the workers have not finished",
            )?,
            backpressure_paused: gauge(
                "pulse_ingester_backpressure_paused",
                "1 while publishing is paused because the backlog passed its high-water mark",
            )?,
            backpressure_pauses: counter(
                "pulse_ingester_backpressure_pauses_total",
                "Times publishing paused for backpressure",
            )?,
            publish_throttled: counter(
                "pulse_ingester_publish_throttled_total",
                "Publish calls refused with RESOURCE_EXHAUSTED because of backpressure",
            )?,
        })
    }
}
