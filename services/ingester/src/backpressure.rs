//! Backpressure: publishing pauses while the workers are too far behind.
//!
//! The backlog (entries the workers group has not finished: pending plus not yet delivered) is
//! measured every `BACKLOG_POLL_MS`. Publishing pauses when it reaches `BACKLOG_HIGH_WATER` and
//! resumes at `BACKLOG_LOW_WATER`, so the gate does not flap around one mark. Between two
//! measurements the gate adds what this ingester published itself, so a fast publisher
//! overshoots the high mark by at most one call. Nothing is buffered: a paused generator or
//! replay waits without producing, and `Publish` refuses with `RESOURCE_EXHAUSTED` so its caller
//! keeps the posts and retries.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use pulse_stream::Producer;
use tokio::sync::watch;

use crate::metrics::IngesterMetrics;

/// The two marks of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub high: u64,
    pub low: u64,
}

impl Marks {
    /// Whether publishing should be paused at `backlog`, given whether it is paused now.
    pub fn paused(&self, paused: bool, backlog: u64) -> bool {
        if paused {
            backlog > self.low
        } else {
            backlog >= self.high
        }
    }
}

#[derive(Debug)]
struct State {
    /// The last measured backlog.
    measured: u64,
    /// Posts this ingester published since that measurement.
    since: u64,
}

struct Inner {
    marks: Marks,
    state: Mutex<State>,
    /// `true` while paused.
    paused: watch::Sender<bool>,
    metrics: IngesterMetrics,
}

/// The gate every publishing path passes; clones share it.
#[derive(Clone)]
pub struct Backpressure(Arc<Inner>);

impl Backpressure {
    /// An open gate, reporting its state in `metrics`.
    pub fn new(marks: Marks, metrics: IngesterMetrics) -> Self {
        Self(Arc::new(Inner {
            marks,
            state: Mutex::new(State {
                measured: 0,
                since: 0,
            }),
            paused: watch::Sender::new(false),
            metrics,
        }))
    }

    pub fn marks(&self) -> Marks {
        self.0.marks
    }

    /// A new measurement of the backlog.
    pub fn measured(&self, backlog: u64) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.measured = backlog;
        state.since = 0;
        self.update(backlog);
    }

    /// `count` posts were published here.
    pub fn record(&self, count: u64) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.since = state.since.saturating_add(count);
        let estimate = state.measured.saturating_add(state.since);
        self.update(estimate);
    }

    /// The backlog as last measured plus what was published here since.
    pub fn estimate(&self) -> u64 {
        let state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.measured.saturating_add(state.since)
    }

    fn update(&self, backlog: u64) {
        let marks = self.0.marks;
        let metrics = &self.0.metrics;
        self.0.paused.send_if_modified(|paused| {
            let next = marks.paused(*paused, backlog);
            let changed = next != *paused;
            if changed {
                tracing::info!(
                    backlog,
                    paused = next,
                    high = marks.high,
                    low = marks.low,
                    "backpressure"
                );
                metrics.backpressure_paused.set(i64::from(next));
                if next {
                    metrics.backpressure_pauses.inc();
                }
            }
            *paused = next;
            changed
        });
    }

    pub fn is_paused(&self) -> bool {
        *self.0.paused.borrow()
    }

    /// Waits until publishing may go on.
    pub async fn wait_open(&self) {
        let mut rx = self.0.paused.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|paused| !*paused).await;
    }
}

/// Measures the backlog every `every` and feeds the gate, forever. When Redis does not answer
/// the gate keeps its state: publishing fails on its own then, and backs off.
pub async fn watch(
    producer: Producer,
    gate: Backpressure,
    every: Duration,
    metrics: IngesterMetrics,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match producer.backlog().await {
            Ok(backlog) => {
                gate.measured(backlog.unprocessed());
                metrics
                    .backlog
                    .set(i64::try_from(backlog.unprocessed()).unwrap_or(i64::MAX));
                metrics
                    .stream_length
                    .set(i64::try_from(backlog.length).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::debug!(error = %e, "cannot measure the backlog"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKS: Marks = Marks { high: 100, low: 50 };

    #[test]
    fn pauses_at_the_high_mark_and_resumes_at_the_low_one() {
        assert!(!MARKS.paused(false, 99));
        assert!(MARKS.paused(false, 100));
        assert!(MARKS.paused(true, 51));
        assert!(!MARKS.paused(true, 50));
    }

    #[tokio::test]
    async fn publishing_between_measurements_counts() {
        let metrics = IngesterMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let gate = Backpressure::new(MARKS, metrics.clone());
        gate.measured(90);
        assert!(!gate.is_paused());
        gate.record(10);
        assert!(gate.is_paused());
        assert_eq!(gate.estimate(), 100);
        assert_eq!(metrics.backpressure_pauses.get(), 1);
        assert_eq!(metrics.backpressure_paused.get(), 1);
        gate.measured(60);
        assert!(gate.is_paused(), "still above the low mark");
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.measured(50);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the gate opens")
            .expect("join");
        assert_eq!(metrics.backpressure_paused.get(), 0);
    }
}
