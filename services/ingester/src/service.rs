//! `pulse.v1.IngestService`: real posts in, validated one by one.

use chrono::Utc;
use pulse_domain::Post;
use pulse_proto::v1::{
    PublishRequest, PublishResponse, PublishResult, ingest_service_server::IngestService,
};
use pulse_runtime::propagation::current_traceparent;
use pulse_stream::{PostEntry, Producer};
use tonic::{Request, Response, Status};

use crate::{backpressure::Backpressure, metrics::IngesterMetrics};

pub struct IngestApi {
    producer: Producer,
    max_batch: usize,
    metrics: IngesterMetrics,
    gate: Backpressure,
}

impl IngestApi {
    pub fn new(
        producer: Producer,
        max_batch: usize,
        metrics: IngesterMetrics,
        gate: Backpressure,
    ) -> Self {
        Self {
            producer,
            max_batch,
            metrics,
            gate,
        }
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    /// Valid posts are appended in one atomic pipeline; invalid ones are reported per item.
    /// When Redis cannot take them the call fails with UNAVAILABLE and nothing is reported
    /// as accepted; while the workers' backlog is over its high-water mark it fails with
    /// RESOURCE_EXHAUSTED, so the caller keeps its posts and retries later.
    #[tracing::instrument(
        name = "ingest.publish",
        skip_all,
        fields(
            otel.kind = "producer",
            messaging.system = "redis",
            messaging.operation.type = "send",
            messaging.batch.message_count,
        )
    )]
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let posts = request.into_inner().posts;
        tracing::Span::current().record("messaging.batch.message_count", posts.len());
        if posts.is_empty() {
            return Err(Status::invalid_argument("no posts given"));
        }
        if posts.len() > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "{} posts is over the limit of {} per call",
                posts.len(),
                self.max_batch
            )));
        }
        if self.gate.is_paused() {
            self.metrics.publish_throttled.inc();
            return Err(Status::resource_exhausted(format!(
                "the workers are behind: about {} posts wait, over the high-water mark of {}; retry later",
                self.gate.estimate(),
                self.gate.marks().high
            )));
        }
        let now = Utc::now();
        let traceparent = current_traceparent();
        let mut results: Vec<PublishResult> = Vec::with_capacity(posts.len());
        let mut accepted: Vec<(usize, PostEntry)> = Vec::new();
        for wire in posts {
            let post_id = wire.post_id.clone();
            match Post::try_from(wire).and_then(|post| post.validate(now).map(|()| post)) {
                Ok(post) => {
                    accepted.push((
                        results.len(),
                        PostEntry {
                            post,
                            traceparent: traceparent.clone(),
                        },
                    ));
                    results.push(PublishResult {
                        post_id,
                        accepted: true,
                        ..PublishResult::default()
                    });
                }
                Err(e) => {
                    self.metrics
                        .posts_rejected
                        .with_label_values(&[e.code()])
                        .inc();
                    results.push(PublishResult {
                        post_id,
                        accepted: false,
                        entry_id: String::new(),
                        error: format!("{}: {e}", e.code()),
                    });
                }
            }
        }
        let entries: Vec<PostEntry> = accepted.iter().map(|(_, e)| e.clone()).collect();
        let ids = self.producer.publish_many(&entries).await.map_err(|e| {
            self.metrics
                .publish_failures
                .with_label_values(&["publish"])
                .inc();
            tracing::warn!(error = %e, "cannot append to the stream");
            Status::unavailable(format!("the stream is unavailable: {e}"))
        })?;
        for ((index, _), id) in accepted.iter().zip(ids) {
            if let Some(result) = results.get_mut(*index) {
                result.entry_id = id;
            }
        }
        self.gate.record(accepted.len() as u64);
        self.metrics
            .posts_ingested
            .with_label_values(&["publish"])
            .inc_by(accepted.len() as u64);
        let accepted_count = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
        Ok(Response::new(PublishResponse {
            results,
            accepted_count,
        }))
    }
}
