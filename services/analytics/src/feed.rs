//! `WatchEvents`: one subscriber's view of `pulse:events`, plus periodic metrics.
//!
//! Each subscriber has a task that follows the feed from its cursor with a blocking XREAD on
//! its own connection and a bounded buffer towards the client. A client that does not keep up
//! fills its buffer and is dropped with RESOURCE_EXHAUSTED naming the last event id it was sent,
//! so it can resume from there; no client ever slows the feed for the others.

use std::time::Duration;

use chrono::Utc;
use pulse_domain::datetime_to_timestamp;
use pulse_proto::v1::{self, WatchEventsResponse, watch_events_response::Event as WireEvent};
use pulse_settings::ConnectionUrl;
use pulse_store::{Pool, PostQuery};
use pulse_stream::{Event, EventFeed, FeedReader, events::is_event_id};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{convert, queries};

/// Events buffered per subscriber before it counts as too slow.
pub const SUBSCRIBER_BUFFER: usize = 1_024;

/// Window of the periodic `metrics_update`.
const METRICS_WINDOW: chrono::Duration = chrono::Duration::hours(24);

#[derive(Clone)]
pub struct Feed {
    events: EventFeed,
    redis_url: ConnectionUrl,
    /// The read pool, for the periodic metrics.
    pool: Pool,
    /// The pool on DATABASE_URL: an alert is announced as soon as it is stored there, before a
    /// replica may have it.
    primary: Pool,
    metrics_interval: Duration,
    /// Turns true when the service shuts down: every subscription then ends.
    stopping: watch::Receiver<bool>,
}

impl Feed {
    pub fn new(
        events: EventFeed,
        redis_url: ConnectionUrl,
        pool: Pool,
        primary: Pool,
        metrics_interval: Duration,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            events,
            redis_url,
            pool,
            primary,
            metrics_interval,
            stopping,
        }
    }

    /// Starts following the feed after `after` (or from now when empty).
    pub async fn subscribe(
        &self,
        after: String,
        block: Duration,
    ) -> Result<ReceiverStream<Result<WatchEventsResponse, Status>>, Status> {
        let unavailable = |e: pulse_stream::StreamError| {
            Status::unavailable(format!("event feed unavailable: {e}"))
        };
        let start = if after.is_empty() {
            self.events.last_id().await.map_err(unavailable)?
        } else if is_event_id(&after) {
            after
        } else {
            return Err(Status::invalid_argument(format!(
                "after_event_id {after:?} is not an event id"
            )));
        };
        let reader = self
            .events
            .reader(self.redis_url.expose(), block)
            .await
            .map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        tokio::spawn(self.clone().follow(reader, start, tx));
        Ok(ReceiverStream::new(rx))
    }

    async fn follow(
        self,
        mut reader: FeedReader,
        mut cursor: String,
        tx: mpsc::Sender<Result<WatchEventsResponse, Status>>,
    ) {
        let mut metrics = tokio::time::interval(self.metrics_interval);
        metrics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        metrics.tick().await;
        let mut stopping = self.stopping.clone();
        stopping.mark_changed();
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                changed = stopping.changed() => {
                    if changed.is_ok() && !*stopping.borrow_and_update() {
                        Vec::new()
                    } else {
                        let _ = tx.try_send(Err(Status::unavailable(format!(
                            "analytics is shutting down; resume after event {cursor}"
                        ))));
                        return;
                    }
                }
                _ = metrics.tick() => self.metrics_update(&cursor).await.into_iter().collect(),
                read = reader.read_after(&cursor, 256) => match read {
                    Ok(entries) => {
                        let mut out = Vec::with_capacity(entries.len());
                        for entry in entries {
                            cursor.clone_from(&entry.id);
                            match entry.event {
                                Ok(event) => out.extend(self.to_wire(entry.id, event, entry.traceparent).await),
                                Err(e) => tracing::warn!(id = %entry.id, error = %e, "skipping an undecodable event"),
                            }
                        }
                        out
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the event feed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Vec::new()
                    }
                },
            };
            for response in next {
                // Keep the last slot for the status that tells a slow client why it was dropped.
                if tx.capacity() <= 1 {
                    let _ = tx.try_send(Err(Status::resource_exhausted(format!(
                        "client too slow: dropped; resume after event {}",
                        response.event_id
                    ))));
                    return;
                }
                if tx.try_send(Ok(response)).is_err() {
                    return;
                }
            }
        }
    }

    async fn to_wire(
        &self,
        id: String,
        event: Event,
        traceparent: Option<String>,
    ) -> Option<WatchEventsResponse> {
        let wire = match event {
            Event::NewPost { post, analyses } => WireEvent::NewPost(v1::AnalyzedPost {
                post: Some(post.into()),
                analyses: analyses.into_iter().map(Into::into).collect(),
                ingested_at: None,
            }),
            Event::Alert { alert_id } => {
                let client = self.primary.get().await.ok()?;
                let alert = pulse_store::alerts::get(&client, alert_id).await.ok()??;
                WireEvent::Alert(convert::alert_to_wire(alert))
            }
        };
        Some(WatchEventsResponse {
            event_id: id,
            event: Some(wire),
            traceparent: traceparent.unwrap_or_default(),
        })
    }

    async fn metrics_update(&self, cursor: &str) -> Option<WatchEventsResponse> {
        let now = Utc::now();
        let query = PostQuery {
            from: Some(now - METRICS_WINDOW),
            ..PostQuery::default()
        };
        match queries::distribution(&self.pool, &query, false).await {
            Ok(distribution) => Some(WatchEventsResponse {
                event_id: cursor.to_owned(),
                event: Some(WireEvent::MetricsUpdate(v1::MetricsUpdate {
                    distribution: Some(distribution),
                    at: Some(datetime_to_timestamp(now)),
                })),
                traceparent: String::new(),
            }),
            Err(status) => {
                tracing::warn!(%status, "cannot compute the metrics update");
                None
            }
        }
    }
}
