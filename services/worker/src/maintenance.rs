//! Keeps the week partitions of the posts ahead of the writes and drops those past retention
//! (see [`pulse_store::partitions`]): at start, so that a long-stopped deployment finds this
//! week's partition, then every `MAINTENANCE_INTERVAL_SECS`. Every worker runs the loop; an
//! advisory lock lets one of them work at a time.

use std::time::Duration;

use pulse_settings::RetentionSettings;
use pulse_store::{Pool, partitions};

use crate::metrics::WorkerMetrics;

/// Maintains every `every`, forever.
pub async fn keep_maintained(
    pool: Pool,
    retention: RetentionSettings,
    every: Duration,
    metrics: WorkerMetrics,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = maintain_once(&pool, retention, &metrics).await {
            metrics.maintenance_failures.inc();
            tracing::warn!(error = %e, "partition maintenance failed; retrying at the next interval");
        }
    }
}

async fn maintain_once(
    pool: &Pool,
    retention: RetentionSettings,
    metrics: &WorkerMetrics,
) -> Result<(), pulse_store::StoreError> {
    let mut client = pool.get().await?;
    let policy = partitions::Retention::from_days(retention.raw_days, retention.rollup_days);
    let done = partitions::maintain(
        &mut client,
        chrono::Utc::now(),
        retention.ahead_days,
        policy,
    )
    .await?;
    match done {
        Some(done) => metrics
            .partition_weeks_dropped
            .inc_by(u64::from(done.weeks_dropped)),
        None => tracing::debug!("another worker is maintaining the partitions"),
    }
    Ok(())
}
