//! One batch, from stream entries to stored analyses.
//!
//! The order of effects is what makes redelivery safe: the transaction commits first (and is
//! idempotent on `post_id` and `(post_id, model_name)`), the entries are acknowledged second,
//! and the events go out last. A crash between any two steps leaves the entries pending, and
//! processing them again changes nothing in the database. Entries read again from a pending
//! list (after a failure, a restart, or from a dead worker) whose posts are already stored are
//! acknowledged without calling inference again.
//!
//! Every failure is classified ([`Fault`]) as either *transient* (a dependency is unavailable or
//! too slow) or *the entry's fault* (its content is refused). The rule:
//!
//! - A transient failure fails the batch as a whole: its entries stay pending, the read loop
//!   waits for the dependency, and the failure never counts towards `MAX_DELIVERIES`.
//! - A batch that fails by the fault of its content is split in halves, recursively, in the
//!   same pass, until the entries at fault are alone: every other entry is stored and
//!   acknowledged at once. Each failure of a lone entry counts one towards `MAX_DELIVERIES`
//!   (in Redis, see [`pulse_stream::failures`]); the entry stays pending and is retried a
//!   little later, and is dead-lettered with its error at its `MAX_DELIVERIES`-th failure.

use std::time::Duration;

use chrono::Utc;
use opentelemetry::trace::TraceContextExt;
use pulse_domain::{Analysis, Post};
use pulse_proto::v1::{
    self, AnalyzeBatchRequest, GetModelInfoRequest, Task,
    inference_service_client::InferenceServiceClient,
};
use pulse_runtime::propagation::{
    TracedChannel, context_from_traceparent, current_traceparent, set_remote_parent,
};
use pulse_store::{Pool, StoreError, posts::insert_analysed_mentioning};
use pulse_stream::{Delivery, Event, EventFeed, GroupConsumer, PostEntry, StreamError};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::WorkerMetrics;

/// How long the check that inference still answers may take, before an ambiguous inference
/// error is blamed on a lone entry.
const INFERENCE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Whose fault a failure is: what decides whether it counts towards `MAX_DELIVERIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A dependency was unavailable or too slow: connection refused or reset, a timeout, a
    /// pool timeout, Redis failing, inference answering `UNAVAILABLE`, `DEADLINE_EXCEEDED`,
    /// `RESOURCE_EXHAUSTED`, `CANCELLED`, `ABORTED` (or refusing the call itself:
    /// `FAILED_PRECONDITION` for a model not loaded, `UNIMPLEMENTED`, `UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`), a missing partition, a mismatched answer. The same entries will go
    /// through once the dependency answers, so this never counts.
    Transient,
    /// The entries' own content: inference refusing a text (`INVALID_ARGUMENT`,
    /// `OUT_OF_RANGE`) or failing on it (`INTERNAL`, `UNKNOWN`, `DATA_LOSS`, as a model that
    /// crashes on an input does), or the database rejecting a row (SQLSTATE class 22, a data
    /// exception, or 23, a constraint violation). In a batch, some entry is at fault: the
    /// batch is split to find it. A lone entry's failure counts towards `MAX_DELIVERIES`.
    Entry,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Entries stored and acknowledged.
    pub stored: usize,
    /// Entries read again whose posts were stored already: acknowledged without inference.
    pub already_stored: usize,
    pub dead_lettered: usize,
    /// Entries that failed by their own fault and stay pending, to be retried later.
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

    /// Whose fault the failure is (see [`Fault`] for the rule).
    pub fn fault(&self) -> Fault {
        match self {
            BatchError::Inference(status) => match status.code() {
                tonic::Code::InvalidArgument
                | tonic::Code::OutOfRange
                | tonic::Code::Internal
                | tonic::Code::Unknown
                | tonic::Code::DataLoss => Fault::Entry,
                _ => Fault::Transient,
            },
            BatchError::Store(e) if e.is_transient() => Fault::Transient,
            BatchError::Store(_) => Fault::Entry,
            BatchError::InferenceProtocol { .. }
            | BatchError::Stream(_)
            | BatchError::Timeout(_) => Fault::Transient,
        }
    }

    /// True when the failure is a dependency's ([`Fault::Transient`]).
    pub fn is_transient(&self) -> bool {
        self.fault() == Fault::Transient
    }

    /// True for an inference failure that a broken connection can also produce (tonic reports
    /// some transport errors as `INTERNAL` or `UNKNOWN`): it is blamed on an entry only once
    /// inference is seen to answer.
    fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            BatchError::Inference(status)
                if matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
        )
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
    /// Extracts what posts mention for the insights; `None` stores posts without it.
    pub mentions: Option<crate::mentions::Extractor>,
}

/// A decoded entry and the span of its processing, parented to its publisher's trace.
struct Work {
    delivery: Delivery,
    post: Post,
    span: tracing::Span,
}

impl Processor {
    /// Processes `deliveries`. `redelivered` marks entries read from a pending list, which may
    /// have been stored already (by a worker that died before acknowledging them).
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
        self.metrics
            .entries_already_stored
            .inc_by(outcome.already_stored as u64);
        // Entries stored before a failure midway (parts of a split batch) are done all the same.
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
        let (deleted, deliveries): (Vec<Delivery>, Vec<Delivery>) =
            deliveries.into_iter().partition(Delivery::is_deleted);
        if !deleted.is_empty() {
            // Deleted from the stream while pending (only a trim past the backlog does that):
            // nothing is left to process, so they leave the pending list.
            let ids: Vec<String> = deleted.into_iter().map(|d| d.id).collect();
            tracing::warn!(entries = ?ids, "acknowledging pending entries deleted from the stream");
            self.consumer.ack_and_forget(&ids).await?;
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
                        delivery,
                        post: entry.post,
                        span,
                    });
                }
                Err(e) => {
                    // Undecodable is final: no retry can change the entry's bytes.
                    tracing::warn!(entry = %delivery.id, error = %e, "dead-lettering an undecodable entry");
                    self.dead_letter(&delivery, &format!("undecodable: {e}"), outcome)
                        .await?;
                }
            }
        }
        if redelivered && !work.is_empty() {
            work = self.skip_stored(work, outcome).await?;
        }
        if work.is_empty() {
            return Ok(());
        }
        self.settle(&work, outcome).await
    }

    /// Acknowledges the entries whose posts are stored already (a worker committed them and
    /// died before its acknowledgement) and returns the others. Inference is not called again
    /// for them, and nothing is written twice: the exactly-once effect is the commit's. Their
    /// `new_post` events are not sent again: the posts are stored, and a lost event only delays
    /// the live view, as when any batch's publish fails.
    async fn skip_stored(
        &self,
        work: Vec<Work>,
        outcome: &mut BatchOutcome,
    ) -> Result<Vec<Work>, BatchError> {
        let ids: Vec<&str> = work.iter().map(|w| w.post.post_id.as_str()).collect();
        let stored: std::collections::HashSet<String> = {
            let client = self.pool.get().await.map_err(StoreError::from)?;
            pulse_store::posts::stored_among(&client, &ids)
                .await?
                .into_iter()
                .collect()
        };
        if stored.is_empty() {
            return Ok(work);
        }
        let (done, rest): (Vec<Work>, Vec<Work>) = work
            .into_iter()
            .partition(|w| stored.contains(&w.post.post_id));
        let done_ids: Vec<String> = done.iter().map(|w| w.delivery.id.clone()).collect();
        tracing::info!(
            count = done_ids.len(),
            "acknowledging entries whose posts were already stored"
        );
        self.consumer.ack_and_forget(&done_ids).await?;
        outcome.already_stored += done_ids.len();
        Ok(rest)
    }

    /// Completes `work`, splitting it in halves while it fails by the fault of its content,
    /// until every entry is stored or found at fault alone. Returns the first transient
    /// failure (the rest stays pending, what was stored before it is done).
    async fn settle(&self, work: &[Work], outcome: &mut BatchOutcome) -> Result<(), BatchError> {
        // Depth first, first half first; a stack keeps the recursion out of the future's type.
        let mut parts: Vec<&[Work]> = vec![work];
        while let Some(part) = parts.pop() {
            let error = match self.complete(part).await {
                Ok(()) => {
                    outcome.stored += part.len();
                    continue;
                }
                Err(e) => e,
            };
            match (error.fault(), part) {
                (Fault::Transient, _) => return Err(error),
                (Fault::Entry, [item]) => self.at_fault(item, &error, outcome).await?,
                (Fault::Entry, _) => {
                    tracing::info!(error = %error, entries = part.len(), "batch refused; splitting it to find the entries at fault");
                    self.metrics.batch_splits.inc();
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
            }
        }
        Ok(())
    }

    /// A lone entry failed by its own fault: one more failure counted against it in Redis; it
    /// stays pending for a later retry, or is dead-lettered at its `MAX_DELIVERIES`-th.
    async fn at_fault(
        &self,
        item: &Work,
        error: &BatchError,
        outcome: &mut BatchOutcome,
    ) -> Result<(), BatchError> {
        if error.is_ambiguous() && !self.inference_answers().await {
            // The connection broke rather than the model: nobody's fault but the network's.
            return Err(BatchError::Inference(tonic::Status::unavailable(format!(
                "inference does not answer after: {error}"
            ))));
        }
        let error_text = error.to_string();
        let failures = self
            .consumer
            .record_failure(&item.delivery.id, &error_text)
            .await?;
        self.metrics.entries_failed.inc();
        if failures >= self.max_deliveries {
            let reason = format!(
                "failed {failures} times by its own fault (MAX_DELIVERIES {}); last error: {error_text}",
                self.max_deliveries
            );
            tracing::warn!(entry = %item.delivery.id, post_id = %item.post.post_id, %reason, "dead-lettering an entry that keeps failing");
            self.dead_letter(&item.delivery, &reason, outcome).await
        } else {
            tracing::warn!(entry = %item.delivery.id, post_id = %item.post.post_id, failures, %error, "entry refused; it stays pending and is retried later");
            outcome.failed += 1;
            Ok(())
        }
    }

    /// Moves `delivery` to the dead-letter stream with `reason` and its delivery count.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        outcome: &mut BatchOutcome,
    ) -> Result<(), BatchError> {
        let deliveries = self
            .consumer
            .delivery_counts(std::slice::from_ref(&delivery.id))
            .await?
            .get(&delivery.id)
            .copied()
            .unwrap_or(1);
        let trimmed = self
            .consumer
            .dead_letter_and_forget(delivery, reason, deliveries)
            .await?;
        if trimmed > 0 {
            tracing::error!(
                trimmed,
                cap = pulse_stream::dead_letters::DEFAULT_MAX_LEN,
                "the dead-letter stream is at its cap: its oldest entries were trimmed"
            );
            self.metrics.dead_letters_trimmed.inc_by(trimmed);
        }
        outcome.dead_lettered += 1;
        Ok(())
    }

    /// Whether inference answers a cheap call now.
    async fn inference_answers(&self) -> bool {
        let mut request = tonic::Request::new(GetModelInfoRequest {});
        request.set_timeout(INFERENCE_CHECK_TIMEOUT);
        tokio::time::timeout(
            INFERENCE_CHECK_TIMEOUT,
            self.inference.clone().get_model_info(request),
        )
        .await
        .is_ok_and(|answer| answer.is_ok())
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
        let ids: Vec<String> = work.iter().map(|w| w.delivery.id.clone()).collect();
        self.consumer.ack_and_forget(&ids).await?;

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

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    use super::*;

    fn inference(code: Code) -> BatchError {
        BatchError::Inference(Status::new(code, "x"))
    }

    #[test]
    fn inference_failures_are_the_entrys_only_when_they_are_about_the_texts() {
        let entry = [
            Code::InvalidArgument,
            Code::OutOfRange,
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
        ];
        let transient = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Cancelled,
            Code::Aborted,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
        ];
        for code in entry {
            assert_eq!(inference(code).fault(), Fault::Entry, "{code:?}");
        }
        for code in transient {
            assert_eq!(inference(code).fault(), Fault::Transient, "{code:?}");
            assert!(inference(code).is_transient());
        }
        // What a broken connection can also produce is checked against inference first.
        assert!(inference(Code::Internal).is_ambiguous());
        assert!(inference(Code::Unknown).is_ambiguous());
        assert!(!inference(Code::InvalidArgument).is_ambiguous());
    }

    #[test]
    fn dependency_failures_are_transient() {
        let cases = [
            BatchError::Store(StoreError::Unavailable("pool timed out".into())),
            BatchError::Stream(StreamError::InvalidUrl("x".into())),
            BatchError::Timeout(Duration::from_secs(10)),
            BatchError::InferenceProtocol { sent: 2, got: 1 },
        ];
        for error in cases {
            assert_eq!(error.fault(), Fault::Transient, "{error}");
        }
        assert_eq!(
            BatchError::Store(StoreError::AnalysisWithoutPost(1)).fault(),
            Fault::Entry
        );
    }

    /// The database's own answers, from the test server: a data exception is the row's fault,
    /// a missing table (a migration not applied) and an unreachable server are not.
    #[tokio::test]
    async fn database_failures_are_classified_by_their_sqlstate() {
        let pool =
            pulse_store::connect_pool(&pulse_testkit::database_server_url(), 1).expect("pool");
        let client = pool.get().await.expect("the test database server");
        let fault = |r: Result<(), StoreError>| BatchError::Store(r.expect_err("fails")).fault();
        let query = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .query(sql, &[])
                    .await
                    .map(drop)
                    .map_err(StoreError::from)
            }
        };
        assert_eq!(fault(query("SELECT 1 / 0").await), Fault::Entry);
        assert_eq!(fault(query("SELECT 'x'::int").await), Fault::Entry);
        assert_eq!(
            fault(query("SELECT 1 FROM pulse_no_such_table").await),
            Fault::Transient
        );
        drop(client);
        let closed = pulse_testkit::free_address().expect("a free port");
        let unreachable =
            pulse_store::connect_pool(&format!("postgres://postgres@{closed}/postgres"), 1)
                .expect("pool");
        let error = unreachable.get().await.map(drop).map_err(StoreError::from);
        assert_eq!(
            BatchError::Store(error.expect_err("nothing listens")).fault(),
            Fault::Transient
        );
    }
}
