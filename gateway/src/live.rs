//! The live feed: one subscription to analytics `WatchEvents`, fanned out to every WebSocket.
//!
//! A single background task follows the feed (resuming from the last event id after any
//! disconnect) and publishes each event as a JSON text on a broadcast channel. Each WebSocket
//! client reads the channel at its own pace; one that falls too far behind skips the events it
//! missed (and is told so) instead of slowing anyone else.
//!
//! A client may narrow the `new_post` events it receives by sending
//! `{"type":"subscribe","source":"reddit","sentiment":"negative"}` (either field optional; a
//! later subscribe replaces the earlier one); `metrics_update` and `alert` always go to everyone.
//! `{"type":"ping"}` is answered with `{"type":"pong"}`, next to the protocol-level pings the
//! server sends.
//!
//! A connection is closed when its client has sent nothing, not even a pong, for
//! `WS_IDLE_TIMEOUT_SECS` (a vanished client whose TCP connection never broke), or when one
//! message could not be handed to it within `WS_SEND_TIMEOUT_SECS` (a reader so slow that the
//! socket's buffers are full): neither may hold a slot and a task forever.

use std::{sync::Arc, time::Duration};

use chrono::{SecondsFormat, Utc};
use futures::{SinkExt, StreamExt};
use pulse_proto::v1::{
    WatchEventsRequest, analytics_service_client::AnalyticsServiceClient,
    watch_events_response::Event,
};
use pulse_runtime::{
    backoff::Backoff,
    propagation::{TracedChannel, context_from_traceparent, set_remote_parent},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use crate::websocket::Socket;

use crate::{params::SENTIMENTS, views};

/// Messages buffered per client before it starts skipping.
pub const CLIENT_BUFFER: usize = 1_024;
/// Longest interval of server pings that keep idle connections (and proxies) alive.
const PING_EVERY: Duration = Duration::from_secs(30);

/// When a connection is given up on.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Silence from the client (no frame, no pong) after which it is closed.
    pub idle: Duration,
    /// Longest one message may take to be handed to the client.
    pub send: Duration,
}

fn message(kind: &str, data: Value) -> String {
    json!({
        "type": kind,
        "data": data,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    })
    .to_string()
}

/// One event as every client receives it, with what the subscription filters look at.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub text: String,
    /// Set on `new_post` only.
    pub post: Option<PostFacts>,
}

/// The filterable facts of a `new_post`.
#[derive(Debug, Clone, PartialEq)]
pub struct PostFacts {
    pub source: String,
    pub sentiment: String,
}

/// What a client asked to receive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscription {
    pub source: Option<String>,
    pub sentiment: Option<String>,
}

impl Subscription {
    pub fn wants(&self, event: &LiveEvent) -> bool {
        let Some(post) = &event.post else {
            return true;
        };
        self.source.as_ref().is_none_or(|s| *s == post.source)
            && self.sentiment.as_ref().is_none_or(|s| *s == post.sentiment)
    }
}

/// A message from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        sentiment: Option<String>,
    },
    Ping,
}

/// Longest accepted source filter (the column's width).
const MAX_SOURCE: usize = 50;

/// The reply to a client's text message, and the new subscription when it subscribed.
fn handle_client_text(text: &str) -> (String, Option<Subscription>) {
    let invalid = |why: String| {
        (
            message("error", json!({"code": "INVALID_MESSAGE", "message": why})),
            None,
        )
    };
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Ping) => (message("pong", json!({})), None),
        Ok(ClientMessage::Subscribe { source, sentiment }) => {
            let source = source
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let sentiment = sentiment
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty());
            if source
                .as_ref()
                .is_some_and(|s| s.chars().count() > MAX_SOURCE || s.chars().any(char::is_control))
            {
                return invalid(format!(
                    "source must be at most {MAX_SOURCE} printable characters"
                ));
            }
            if sentiment
                .as_ref()
                .is_some_and(|s| !SENTIMENTS.contains(&s.as_str()))
            {
                return invalid(format!(
                    "sentiment must be one of {}",
                    SENTIMENTS.join(", ")
                ));
            }
            let subscription = Subscription { source, sentiment };
            (
                message(
                    "subscribed",
                    json!({"source": subscription.source, "sentiment": subscription.sentiment}),
                ),
                Some(subscription),
            )
        }
        Err(e) => invalid(format!(
            "expected {{\"type\":\"subscribe\",\"source\":...,\"sentiment\":...}} or {{\"type\":\"ping\"}}: {e}"
        )),
    }
}

/// Follows the analytics event feed forever, publishing on `tx`.
pub async fn follow(
    mut client: AnalyticsServiceClient<TracedChannel>,
    tx: broadcast::Sender<Arc<LiveEvent>>,
) {
    let mut last_event_id = String::new();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let request = WatchEventsRequest {
            after_event_id: last_event_id.clone(),
        };
        match client.watch_events(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                tracing::info!(after = %last_event_id, "following the event feed");
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            backoff.reset();
                            last_event_id.clone_from(&event.event_id);
                            let live = match event.event {
                                Some(Event::NewPost(post)) => LiveEvent {
                                    text: message("new_post", views::post(&post)),
                                    post: Some(PostFacts {
                                        source: post
                                            .post
                                            .as_ref()
                                            .map(|p| p.source.clone())
                                            .unwrap_or_default(),
                                        sentiment: post
                                            .analyses
                                            .first()
                                            .map(|a| a.sentiment_label.clone())
                                            .unwrap_or_default(),
                                    }),
                                },
                                Some(Event::MetricsUpdate(update)) => LiveEvent {
                                    text: message(
                                        "metrics_update",
                                        update
                                            .distribution
                                            .as_ref()
                                            .map_or(Value::Null, views::distribution),
                                    ),
                                    post: None,
                                },
                                Some(Event::Alert(alert)) => LiveEvent {
                                    text: message("alert", views::alert(&alert)),
                                    post: None,
                                },
                                None => continue,
                            };
                            broadcast(&tx, live, &event.traceparent);
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(%status, "event feed interrupted");
                            break;
                        }
                    }
                }
            }
            Err(status) => tracing::warn!(%status, "cannot subscribe to the event feed"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Hands `live` to every connected client. An event that carries a trace context (a
/// `new_post`) is sent in a span of that trace; periodic updates are not traced, so they do
/// not fill the tracing backend with one-span traces.
fn broadcast(tx: &broadcast::Sender<Arc<LiveEvent>>, live: LiveEvent, traceparent: &str) {
    let live = Arc::new(live);
    if traceparent.is_empty() {
        // No receivers is fine: nobody is watching right now.
        let _ = tx.send(live);
        return;
    }
    let span = tracing::info_span!(
        "gateway.broadcast",
        otel.name = "broadcast live event",
        otel.kind = "producer",
        messaging.system = "websocket",
        messaging.operation.type = "send",
        pulse.websocket.clients = tx.receiver_count(),
    );
    set_remote_parent(&span, context_from_traceparent(traceparent));
    let _ = span.in_scope(|| tx.send(live));
}

/// Serves one WebSocket client until it leaves.
pub async fn client<T: Send>(
    socket: Socket,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    connections: prometheus::IntGauge,
    timeouts: Timeouts,
    slot: T,
) {
    connections.inc();
    serve_client(socket, events, timeouts).await;
    connections.dec();
    drop(slot);
}

/// Why a connection ended early.
#[derive(Debug)]
enum Ended {
    /// The client went away or the socket failed.
    Gone,
    /// A message could not be handed over within the send timeout.
    SlowReader,
}

async fn send(
    sink: &mut futures::stream::SplitSink<Socket, Message>,
    message: Message,
    timeout: Duration,
) -> Result<(), Ended> {
    match tokio::time::timeout(timeout, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ended::Gone),
        Err(_) => Err(Ended::SlowReader),
    }
}

async fn serve_client(
    socket: Socket,
    events: broadcast::Receiver<Arc<LiveEvent>>,
    timeouts: Timeouts,
) {
    let (mut sink, incoming) = socket.split();
    let ended = exchange(&mut sink, incoming, events, timeouts).await;
    match ended {
        Err(Ended::SlowReader) => {
            tracing::info!("live client too slow to read; closed");
        }
        Ok(()) | Err(Ended::Gone) => {}
    }
    // Best effort: a slow or vanished client may never read it.
    let _ = tokio::time::timeout(Duration::from_millis(100), sink.close()).await;
}

async fn exchange(
    sink: &mut futures::stream::SplitSink<Socket, Message>,
    mut incoming: futures::stream::SplitStream<Socket>,
    mut events: broadcast::Receiver<Arc<LiveEvent>>,
    timeouts: Timeouts,
) -> Result<(), Ended> {
    let hello = message(
        "connected",
        json!({"message": "connected to the Pulse live feed"}),
    );
    send(sink, Message::text(hello), timeouts.send).await?;
    let mut ping = tokio::time::interval(
        PING_EVERY
            .min(timeouts.idle / 2)
            .max(Duration::from_millis(10)),
    );
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let mut subscription = Subscription::default();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    if subscription.wants(&event) {
                        send(sink, Message::text(event.text.clone()), timeouts.send).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    let notice = message("lagged", json!({"skipped": skipped}));
                    send(sink, Message::text(notice), timeouts.send).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > timeouts.idle {
                    tracing::info!("live client silent past the idle timeout; closed");
                    return Ok(());
                }
                send(sink, Message::Ping(Default::default()), timeouts.send).await?;
            }
            inbound = incoming.next() => {
                last_heard = tokio::time::Instant::now();
                match inbound {
                    Some(Ok(msg)) if msg.is_close() => return Ok(()),
                    Some(Ok(msg)) if msg.is_text() => {
                        let (reply, subscribed) =
                            handle_client_text(msg.to_text().unwrap_or_default());
                        if let Some(new) = subscribed {
                            subscription = new;
                        }
                        send(sink, Message::text(reply), timeouts.send).await?;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Err(Ended::Gone),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(source: &str, sentiment: &str) -> LiveEvent {
        LiveEvent {
            text: String::new(),
            post: Some(PostFacts {
                source: source.into(),
                sentiment: sentiment.into(),
            }),
        }
    }

    #[test]
    fn subscriptions_filter_new_posts_only() {
        let (reply, sub) =
            handle_client_text(r#"{"type":"subscribe","source":"reddit","sentiment":"NEGATIVE"}"#);
        assert!(reply.contains("subscribed"));
        let sub = sub.expect("subscribed");
        assert!(sub.wants(&post("reddit", "negative")));
        assert!(!sub.wants(&post("twitter", "negative")));
        assert!(!sub.wants(&post("reddit", "positive")));
        assert!(sub.wants(&LiveEvent {
            text: String::new(),
            post: None
        }));
        let (reply, sub) = handle_client_text(r#"{"type":"subscribe","sentiment":"furious"}"#);
        assert!(reply.contains("INVALID_MESSAGE") && sub.is_none());
        let (reply, sub) = handle_client_text("not json");
        assert!(reply.contains("INVALID_MESSAGE") && sub.is_none());
        assert!(handle_client_text(r#"{"type":"ping"}"#).0.contains("pong"));
    }
}
