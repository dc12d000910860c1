//! One batch, from stream entries to stored analyses.
//!
//! The order of effects is what makes redelivery safe: the transaction commits first (and is
//! idempotent on `post_id` and `(post_id, model_name)`), the entries are acknowledged second,
//! and the events go out last. A crash between any two steps leaves the entries pending, and
//! processing them again changes nothing in the database.
//!
//! Failures come in two kinds. A dependency that is down ([`BatchError::is_transient`]) fails
//! the batch as a whole: its entries stay pending and the read loop waits for the dependency.
//! A batch refused because of its content (inference answering `INVALID_ARGUMENT`, a row the
//! database rejects) is retried entry by entry, so one bad entry cannot hold back the others;
//! the entries that still fail stay pending, are retried a little later, and are dead-lettered
//! with their last error once delivered more than `MAX_DELIVERIES` times.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::Utc;
use opentelemetry::trace::TraceContextExt;
use pulse_domain::{Analysis, Post};
use pulse_proto::v1::{
    self, AnalyzeBatchRequest, Task, inference_service_client::InferenceServiceClient,
};
use pulse_runtime::propagation::{
    TracedChannel, context_from_traceparent, current_traceparent, set_remote_parent,
};
use pulse_store::{Pool, StoreError, posts::insert_analysed_mentioning};
use pulse_stream::{Delivery, Event, EventFeed, GroupConsumer, PostEntry, StreamError};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::WorkerMetrics;

/// Why a batch was not completed; its entries stay pending and will be retried.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("inference failed: {0}")]
    Inference(tonic::Status),
    #[error("inference answered {got} analyses for {sent} texts")]
    InferenceProtocol { sent: usize, got: usize },
    #[error("storing failed: {0}")]
    Store(#[from] StoreError),
    #[error("redis failed: {0}")]
    Stream(#[from] StreamError),
    #[error("the batch overran its deadline of {0:?}")]
    Timeout(Duration),
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Entries stored and acknowledged.
    pub stored: usize,
    pub dead_lettered: usize,
    /// Entries refused for their content, left pending to be retried later.
    pub failed: usize,
}

impl BatchError {
    /// The metric label of the failure's cause.
    pub fn cause(&self) -> &'static str {
        match self {
            BatchError::Inference(_) | BatchError::InferenceProtocol { .. } => "inference",
            BatchError::Store(_) => "database",
            BatchError::Stream(_) => "redis",
            BatchError::Timeout(_) => "timeout",
        }
    }

    /// True when the failure is about a dependency, so the same entries should simply be tried
    /// again once it answers; false when it is about the entries themselves (inference refusing
    /// a text as `INVALID_ARGUMENT`/`OUT_OF_RANGE`, the database rejecting a value or a
    /// constraint), so retrying the batch as it is would fail again.
    pub fn is_transient(&self) -> bool {
        match self {
            BatchError::Inference(status) => !matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::OutOfRange
            ),
            BatchError::Store(e) => e.is_transient(),
            BatchError::InferenceProtocol { .. }
            | BatchError::Stream(_)
            | BatchError::Timeout(_) => true,
        }
    }
}

/// The last error of entries left pending after a content failure, so the dead letter can say
/// why; bounded, as a worker may see many such entries before they are dead-lettered.
#[derive(Debug, Default)]
pub struct LastErrors(Mutex<HashMap<String, String>>);

impl LastErrors {
    const CAPACITY: usize = 10_000;

    fn note(&self, id: &str, error: &BatchError) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(id.to_owned(), error.to_string());
    }

    fn take(&self, id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    /// Drops the notes of entries that were stored after all.
    fn forget(&self, work: &[Work]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.is_empty() {
            for item in work {
                map.remove(&item.delivery_id);
            }
        }
    }
}

pub struct Processor {
    pub metrics: WorkerMetrics,
    pub consumer: GroupConsumer,
    pub inference: InferenceServiceClient<TracedChannel>,
    pub pool: Pool,
    pub events: EventFeed,
    pub max_deliveries: u64,
    pub inference_timeout: Duration,
    pub last_errors: LastErrors,
    /// Extracts what posts mention for the insights; `None` stores posts without it.
    pub mentions: Option<crate::mentions::Extractor>,
}

/// A decoded entry and the span of its processing, parented to its publisher's trace.
struct Work {
    delivery_id: String,
    post: Post,
    span: tracing::Span,
}

impl Processor {
    /// Processes `deliveries`. `redelivered` marks entries read from a pending list, whose
    /// delivery counts are checked against `max_deliveries` first.
    pub async fn process(
        &self,
        deliveries: Vec<Delivery>,
        redelivered: bool,
    ) -> Result<BatchOutcome, BatchError> {
        let mut outcome = BatchOutcome::default();
        if deliveries.is_empty() {
            return Ok(outcome);
        }
        let started = std::time::Instant::now();
        let result = self
            .process_inner(deliveries, redelivered, &mut outcome)
            .await;
        self.metrics
            .posts_dead_lettered
            .inc_by(outcome.dead_lettered as u64);
        // Entries stored before a failure midway (one-by-one retries) are done all the same.
        self.metrics.posts_processed.inc_by(outcome.stored as u64);
        if result.is_ok() {
            self.metrics.batch_size.observe(outcome.stored as f64);
            self.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        result.map(|()| outcome)
    }

    async fn process_inner(
        &self,
        deliveries: Vec<Delivery>,
        redelivered: bool,
        outcome: &mut BatchOutcome,
    ) -> Result<(), BatchError> {
        let (deleted, mut deliveries): (Vec<Delivery>, Vec<Delivery>) =
            deliveries.into_iter().partition(Delivery::is_deleted);
        if !deleted.is_empty() {
            // Deleted from the stream while pending (only a trim past the backlog does that):
            // nothing is left to process, so they leave the pending list.
            let ids: Vec<String> = deleted.into_iter().map(|d| d.id).collect();
            tracing::warn!(entries = ?ids, "acknowledging pending entries deleted from the stream");
            self.consumer.ack(&ids).await?;
        }
        let mut counts = HashMap::new();
        if redelivered {
            let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
            counts = self.consumer.delivery_counts(&ids).await?;
            let mut keep = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                let count = counts.get(&delivery.id).copied().unwrap_or(1);
                if count > self.max_deliveries {
                    let reason = match self.last_errors.take(&delivery.id) {
                        Some(error) => {
                            format!("delivered {count} times without success; last error: {error}")
                        }
                        None => format!("delivered {count} times without success"),
                    };
                    tracing::warn!(entry = %delivery.id, count, %reason, "dead-lettering an entry that keeps failing");
                    self.consumer.dead_letter(&delivery, &reason, count).await?;
                    outcome.dead_lettered += 1;
                } else {
                    keep.push(delivery);
                }
            }
            deliveries = keep;
        }

        let now = Utc::now();
        let stream = self.consumer.stream_key();
        let mut work = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match PostEntry::decode(&delivery.fields, now) {
                Ok(entry) => {
                    let span = tracing::info_span!(
                        "worker.process",
                        otel.name = %format!("process {stream}"),
                        otel.kind = "consumer",
                        messaging.system = "redis",
                        messaging.operation.type = "process",
                        messaging.destination.name = %stream,
                        messaging.consumer.group.name = pulse_stream::keys::WORKER_GROUP,
                        messaging.client.id = %self.consumer.consumer_name(),
                        messaging.message.id = %delivery.id,
                        pulse.post_id = %entry.post.post_id,
                    );
                    if let Some(traceparent) = &entry.traceparent {
                        set_remote_parent(&span, context_from_traceparent(traceparent));
                    }
                    work.push(Work {
                        delivery_id: delivery.id,
                        post: entry.post,
                        span,
                    });
                }
                Err(e) => {
                    let count = counts.get(&delivery.id).copied().unwrap_or(1);
                    tracing::warn!(entry = %delivery.id, error = %e, "dead-lettering an undecodable entry");
                    self.consumer
                        .dead_letter(&delivery, &format!("undecodable: {e}"), count)
                        .await?;
                    outcome.dead_lettered += 1;
                }
            }
        }
        if work.is_empty() {
            return Ok(());
        }

        match self.complete(&work).await {
            Ok(()) => {
                outcome.stored += work.len();
                self.last_errors.forget(&work);
                return Ok(());
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) if work.len() == 1 => {
                self.refused(&work[0], &e, outcome);
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, entries = work.len(), "batch refused; retrying its entries one by one");
            }
        }
        for item in &work {
            match self.complete(std::slice::from_ref(item)).await {
                Ok(()) => {
                    outcome.stored += 1;
                    self.last_errors.forget(std::slice::from_ref(item));
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => self.refused(item, &e, outcome),
            }
        }
        Ok(())
    }

    /// An entry refused for its content stays pending; the error is kept for its dead letter.
    fn refused(&self, item: &Work, error: &BatchError, outcome: &mut BatchOutcome) {
        tracing::warn!(entry = %item.delivery_id, post_id = %item.post.post_id, %error, "entry refused; it stays pending and is retried later");
        self.last_errors.note(&item.delivery_id, error);
        self.metrics.entries_failed.inc();
        outcome.failed += 1;
    }

    /// Analyses, stores, acknowledges and announces `work` as one unit.
    ///
    /// The batch span is a child of its first post's span and links to every post it carries:
    /// a span has one parent, and copying the shared inference call and transaction into every
    /// post's trace would invent work that happened once. A post that travelled alone (the
    /// usual case below saturation) therefore has its whole life in one trace; a post that
    /// shared a batch shows the batch as a link from its own processing span.
    async fn complete(&self, work: &[Work]) -> Result<(), BatchError> {
        let batch_span = tracing::info_span!(
            parent: work.first().map(|w| w.span.id()).unwrap_or_default(),
            "worker.batch",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
            messaging.batch.message_count = work.len(),
        );
        for item in work {
            batch_span.add_link(item.span.context().span().span_context().clone());
        }
        let result = self.complete_in(work, &batch_span).await;
        if let Err(e) = &result {
            batch_span.record("otel.status_code", "ERROR");
            batch_span.record("otel.status_message", tracing::field::display(e));
        }
        result
    }

    async fn complete_in(
        &self,
        work: &[Work],
        batch_span: &tracing::Span,
    ) -> Result<(), BatchError> {
        let analyses = self.analyze(work).instrument(batch_span.clone()).await?;
        let posts: Vec<Post> = work.iter().map(|w| w.post.clone()).collect();
        let mentions: Vec<_> = match &self.mentions {
            Some(extractor) => posts.iter().map(|p| extractor.mentions(p)).collect(),
            None => Vec::new(),
        };
        // pulse-store traces the write as a child of the batch span.
        async {
            let mut client = self.pool.get().await.map_err(StoreError::from)?;
            insert_analysed_mentioning(&mut client, &posts, &mentions, &analyses).await
        }
        .instrument(batch_span.clone())
        .await?;
        let ids: Vec<String> = work.iter().map(|w| w.delivery_id.clone()).collect();
        self.consumer.ack(&ids).await?;

        let events: Vec<(Event, Option<String>)> = work
            .iter()
            .map(|w| {
                let event = Event::NewPost {
                    post: w.post.clone(),
                    analyses: analyses
                        .iter()
                        .filter(|a| a.post_id == w.post.post_id)
                        .cloned()
                        .collect(),
                };
                (event, w.span.in_scope(current_traceparent))
            })
            .collect();
        let publish_span = tracing::info_span!(
            parent: batch_span,
            "events.publish",
            otel.name = %format!("send {}", self.events.key()),
            otel.kind = "producer",
            messaging.system = "redis",
            messaging.operation.type = "send",
            messaging.destination.name = %self.events.key(),
            messaging.batch.message_count = events.len(),
        );
        // The data is committed and acknowledged; a lost event only delays the live view.
        if let Err(e) = self.events.publish(&events).instrument(publish_span).await {
            tracing::warn!(error = %e, "cannot publish events for a stored batch");
        }
        Ok(())
    }

    async fn analyze(&self, work: &[Work]) -> Result<Vec<Analysis>, BatchError> {
        let texts: Vec<String> = work.iter().map(|w| w.post.content.clone()).collect();
        let mut request = tonic::Request::new(AnalyzeBatchRequest {
            texts,
            tasks: Vec::new(),
        });
        request.set_timeout(self.inference_timeout);
        let _timer = self.metrics.inference_seconds.start_timer();
        let response = self
            .inference
            .clone()
            .analyze_batch(request)
            .await
            .map_err(BatchError::Inference)?
            .into_inner();
        if response.analyses.len() != work.len() {
            return Err(BatchError::InferenceProtocol {
                sent: work.len(),
                got: response.analyses.len(),
            });
        }
        let analyzed_at = Utc::now();
        Ok(work
            .iter()
            .zip(response.analyses)
            .filter_map(|(w, analysis)| to_analysis(&w.post.post_id, &analysis, analyzed_at))
            .collect())
    }
}

/// The stored form of one text's results; `None` when it has no sentiment result.
fn to_analysis(
    post_id: &str,
    analysis: &v1::Analysis,
    analyzed_at: chrono::DateTime<Utc>,
) -> Option<Analysis> {
    let by_task = |task: Task| analysis.results.iter().find(|r| r.task == i32::from(task));
    let sentiment = by_task(Task::Sentiment)?;
    let emotion = by_task(Task::Emotion);
    Some(Analysis {
        post_id: post_id.to_owned(),
        model_name: sentiment.model.clone(),
        sentiment_label: sentiment.label.clone(),
        confidence_score: sentiment.score.clamp(0.0, 1.0),
        emotion: emotion.map(|e| e.label.clone()),
        emotion_score: emotion.map(|e| e.score.clamp(0.0, 1.0)),
        emotion_model: emotion.map(|e| e.model.clone()),
        analyzed_at,
    })
}
