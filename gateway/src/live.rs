//! The live feed: one subscription to analytics `WatchEvents`, fanned out to every WebSocket.
//!
//! A single background task follows the feed (resuming from the last event id after any
//! disconnect) and publishes each event as a JSON text on a broadcast channel. Each WebSocket
//! client reads the channel at its own pace; one that falls too far behind skips the events it
//! missed (and is told so) instead of slowing anyone else.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use futures::{SinkExt, StreamExt};
use pulse_core::{backoff::Backoff, propagation::TracedChannel};
use pulse_proto::v1::{
    WatchEventsRequest, analytics_service_client::AnalyticsServiceClient,
    watch_events_response::Event,
};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use warp::ws::{Message, WebSocket};

use crate::views;

/// Messages buffered per client before it starts skipping.
pub const CLIENT_BUFFER: usize = 1_024;
/// Interval of server pings that keep idle connections (and proxies) alive.
const PING_EVERY: Duration = Duration::from_secs(30);

fn message(kind: &str, data: Value) -> String {
    json!({
        "type": kind,
        "data": data,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    })
    .to_string()
}

/// Follows the analytics event feed forever, publishing on `tx`.
pub async fn follow(
    mut client: AnalyticsServiceClient<TracedChannel>,
    tx: broadcast::Sender<String>,
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
                            let text = match event.event {
                                Some(Event::NewPost(post)) => {
                                    message("new_post", views::post(&post))
                                }
                                Some(Event::MetricsUpdate(update)) => message(
                                    "metrics_update",
                                    update
                                        .distribution
                                        .as_ref()
                                        .map_or(Value::Null, views::distribution),
                                ),
                                Some(Event::Alert(alert)) => message("alert", views::alert(&alert)),
                                None => continue,
                            };
                            // No receivers is fine: nobody is watching right now.
                            let _ = tx.send(text);
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

/// Serves one WebSocket client until it leaves.
pub async fn client(
    socket: WebSocket,
    events: broadcast::Receiver<String>,
    connections: prometheus::IntGauge,
) {
    connections.inc();
    serve_client(socket, events).await;
    connections.dec();
}

async fn serve_client(socket: WebSocket, mut events: broadcast::Receiver<String>) {
    let (mut sink, mut incoming) = socket.split();
    let hello = message(
        "connected",
        json!({"message": "connected to the Pulse live feed"}),
    );
    if sink.send(Message::text(hello)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    let notice = message("lagged", json!({"skipped": skipped}));
                    if sink.send(Message::text(notice)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if sink.send(Message::ping(Vec::new())).await.is_err() {
                    return;
                }
            }
            inbound = incoming.next() => match inbound {
                Some(Ok(msg)) if msg.is_close() => return,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}
