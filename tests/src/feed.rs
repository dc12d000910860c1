//! The gateway's WebSocket feed as a test reads it.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Error, Message};

/// Reads WebSocket messages until a `new_post` for `post_id` arrives (true) or `wait` passes
/// (false); messages that are not JSON are skipped.
pub async fn wait_for_post<S>(ws: &mut S, post_id: &str, wait: Duration) -> anyhow::Result<bool>
where
    S: futures::Stream<Item = Result<Message, Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, ws.next()).await {
        let message = message?;
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if value["type"] == "new_post" && value["data"]["post_id"] == post_id {
            return Ok(true);
        }
    }
    Ok(false)
}
