//! The worker's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct WorkerMetrics {
    pub posts_processed: IntCounter,
    pub posts_dead_lettered: IntCounter,
    pub batches_failed: IntCounterVec,
    pub batch_size: Histogram,
    pub batch_seconds: Histogram,
    pub inference_seconds: Histogram,
    pub stream_pending: IntGauge,
    pub consumer_lag: IntGauge,
    pub stream_length: IntGauge,
    pub batches_in_flight: IntGauge,
    pub entries_claimed: IntCounter,
    pub entries_failed: IntCounter,
    pub entries_already_stored: IntCounter,
    pub batch_splits: IntCounter,
    pub dead_letters: IntGauge,
    pub dead_letters_cap: IntGauge,
    pub dead_letters_trimmed: IntCounter,
    pub entries_trimmed: IntCounter,
    pub batches_abandoned: IntCounter,
    pub partition_weeks_dropped: IntCounter,
    pub maintenance_failures: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// The `cause` label values of `pulse_worker_batches_failed_total`.
pub const FAILURE_CAUSES: [&str; 5] = ["inference", "database", "redis", "timeout", "panic"];

impl WorkerMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let seconds = prometheus::exponential_buckets(0.001, 2.0, 15)?;
        let batches_failed = IntCounterVec::new(
            Opts::new(
                "pulse_worker_batches_failed_total",
                "Batches left pending after a failure, by cause",
            ),
            &["cause"],
        )?;
        registry.register(Box::new(batches_failed.clone()))?;
        // Every cause from the start at 0, so `rate()` and `increase()` see the first failure
        // instead of a series that appears out of nothing (dashboards and alert rules use them).
        for cause in FAILURE_CAUSES {
            batches_failed.with_label_values(&[cause]);
        }
        Ok(Self {
            posts_processed: counter(
                registry,
                "pulse_worker_posts_processed_total",
                "Posts stored and acknowledged",
            )?,
            posts_dead_lettered: counter(
                registry,
                "pulse_worker_posts_dead_lettered_total",
                "Entries moved to the dead-letter stream",
            )?,
            batches_failed,
            batch_size: histogram(
                registry,
                "pulse_worker_batch_size",
                "Entries per processed batch",
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
            )?,
            batch_seconds: histogram(
                registry,
                "pulse_worker_batch_seconds",
                "Time to process one batch end to end",
                seconds.clone(),
            )?,
            inference_seconds: histogram(
                registry,
                "pulse_worker_inference_seconds",
                "AnalyzeBatch call latency seen by the worker",
                seconds,
            )?,
            stream_pending: gauge(
                registry,
                "pulse_stream_pending",
                "Entries delivered to the workers group and not yet acknowledged",
            )?,
            consumer_lag: gauge(
                registry,
                "pulse_stream_consumer_lag",
                "Entries in the posts stream not yet delivered to the workers group",
            )?,
            stream_length: gauge(
                registry,
                "pulse_stream_length",
                "Entries in the posts stream",
            )?,
            batches_in_flight: gauge(
                registry,
                "pulse_worker_batches_in_flight",
                "Batches being processed now",
            )?,
            entries_claimed: counter(
                registry,
                "pulse_worker_entries_claimed_total",
                "Entries taken over from idle consumers (XAUTOCLAIM)",
            )?,
            entries_failed: counter(
                registry,
                "pulse_worker_entries_failed_total",
                "Failures of lone entries by their own fault (each counts towards MAX_DELIVERIES; dependency failures never do)",
            )?,
            entries_already_stored: counter(
                registry,
                "pulse_worker_entries_already_stored_total",
                "Entries read again whose posts were already stored: acknowledged without inference",
            )?,
            batch_splits: counter(
                registry,
                "pulse_worker_batch_splits_total",
                "Batches split in two to isolate the entries at fault",
            )?,
            dead_letters: gauge(
                registry,
                "pulse_worker_dead_letters",
                "Entries in the dead-letter stream",
            )?,
            dead_letters_cap: {
                let cap = gauge(
                    registry,
                    "pulse_worker_dead_letters_cap",
                    "Length past which the dead-letter stream trims its oldest entries",
                )?;
                cap.set(
                    i64::try_from(pulse_stream::dead_letters::DEFAULT_MAX_LEN).unwrap_or(i64::MAX),
                );
                cap
            },
            dead_letters_trimmed: counter(
                registry,
                "pulse_worker_dead_letters_trimmed_total",
                "Dead letters dropped by the dead-letter stream's cap (lost unless replayed before)",
            )?,
            entries_trimmed: counter(
                registry,
                "pulse_worker_stream_trimmed_total",
                "Processed entries trimmed from the posts stream",
            )?,
            batches_abandoned: counter(
                registry,
                "pulse_worker_batches_abandoned_total",
                "Batches left pending at shutdown because they overran the grace period",
            )?,
            partition_weeks_dropped: counter(
                registry,
                "pulse_worker_partition_weeks_dropped_total",
                "Weeks of posts and analyses dropped past RETENTION_DAYS",
            )?,
            maintenance_failures: counter(
                registry,
                "pulse_worker_maintenance_failures_total",
                "Partition maintenance passes that failed (partitions ahead may run out)",
            )?,
        })
    }
}
