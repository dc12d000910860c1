//! Keeps the posts stream short: every claim interval, entries every group has acknowledged are
//! trimmed (`XTRIM MINID` below the oldest pending entry, see [`pulse_stream::trim`]), so Redis
//! holds the backlog and little else, and no entry still pending is ever dropped.

use std::time::Duration;

use pulse_stream::GroupConsumer;

use crate::metrics::WorkerMetrics;

/// Trims every `every`, forever.
pub async fn keep_trimmed(consumer: GroupConsumer, every: Duration, metrics: WorkerMetrics) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match consumer.trim_processed().await {
            Ok(outcome) => {
                metrics.entries_trimmed.inc_by(outcome.removed);
                if outcome.removed > 0 {
                    tracing::debug!(removed = outcome.removed, floor = ?outcome.floor, "trimmed processed entries");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot trim the posts stream"),
        }
    }
}
