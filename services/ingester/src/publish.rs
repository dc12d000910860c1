//! Publishing a chunk of posts from a tool (replay, scenario): one atomic pipeline per chunk,
//! sent once the backpressure gate is open, retried with backoff while Redis is unreachable and
//! never skipped, so every post goes out at least once (the worker's idempotent writes make a
//! re-sent chunk harmless).

use std::future::Future;

use pulse_runtime::{backoff::Backoff, propagation::current_traceparent};
use pulse_stream::{PostEntry, Producer};

use crate::{backpressure::Backpressure, metrics::IngesterMetrics};

/// Most posts sent in one pipeline.
pub const MAX_CHUNK: usize = 100;

/// The tool a chunk comes from: it names the chunk's span and labels the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Replay,
    Scenario,
}

impl Origin {
    /// The `origin` label of the ingester's metrics.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Replay => "replay",
            Origin::Scenario => "scenario",
        }
    }

    /// One span per attempt; span names must be literals, hence the match.
    fn span(self, count: usize) -> tracing::Span {
        match self {
            Origin::Replay => tracing::info_span!(
                "ingest.replay",
                otel.kind = "producer",
                messaging.system = "redis",
                messaging.operation.type = "send",
                messaging.batch.message_count = count,
            ),
            Origin::Scenario => tracing::info_span!(
                "ingest.scenario",
                otel.kind = "producer",
                messaging.system = "redis",
                messaging.operation.type = "send",
                messaging.batch.message_count = count,
            ),
        }
    }
}

/// Sends `chunk` once the gate is open, retrying with backoff while Redis is unreachable;
/// false when `shutdown` came first (then nothing of the chunk is counted as published).
pub async fn publish_chunk(
    producer: &Producer,
    gate: &Backpressure,
    metrics: &IngesterMetrics,
    origin: Origin,
    chunk: &mut [PostEntry],
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<bool> {
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            () = &mut *shutdown => return Ok(false),
            () = gate.wait_open() => {}
        }
        let span = origin.span(chunk.len());
        let traceparent = span.in_scope(current_traceparent);
        for entry in chunk.iter_mut() {
            entry.traceparent.clone_from(&traceparent);
        }
        match producer.publish_many(chunk).await {
            Ok(_) => {
                gate.record(chunk.len() as u64);
                metrics
                    .posts_ingested
                    .with_label_values(&[origin.label()])
                    .inc_by(chunk.len() as u64);
                return Ok(true);
            }
            Err(e) if e.is_unavailable() => {
                metrics
                    .publish_failures
                    .with_label_values(&[origin.label()])
                    .inc();
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %e,
                    ?delay,
                    origin = origin.label(),
                    "cannot publish a chunk of posts; retrying"
                );
                tokio::select! {
                    () = &mut *shutdown => return Ok(false),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
