//! The event feed `pulse:events`: analysed posts and alerts, in the order they were stored.
//!
//! Writers append only after their database transaction committed, so a reader never sees an
//! event for data that is not in PostgreSQL. Readers follow the stream with XREAD from the last
//! id they saw, which makes every subscription resumable.

use std::time::Duration;

use pulse_domain::{Analysis, Post};
use redis::{Value, aio::ConnectionManager, streams::StreamReadReply};

use crate::{RedisKeys, StreamError};

/// Default approximate cap on the feed's length: enough for a client to resume after minutes.
pub const DEFAULT_EVENTS_MAX_LEN: usize = 100_000;

/// What happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A post was analysed and stored.
    NewPost { post: Post, analyses: Vec<Analysis> },
    /// An alert was raised; `alert_id` is its row id in `sentiment_alerts`.
    Alert { alert_id: i64 },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::NewPost { .. } => "new_post",
            Event::Alert { .. } => "alert",
        }
    }
}

/// One entry read from the feed.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub id: String,
    /// The event, or why it could not be decoded (an entry from a newer writer, say).
    pub event: Result<Event, String>,
    pub traceparent: Option<String>,
}

/// Writer and reader of the feed.
#[derive(Clone)]
pub struct EventFeed {
    conn: ConnectionManager,
    key: String,
    max_len: usize,
}

impl EventFeed {
    pub fn new(conn: ConnectionManager, keys: &RedisKeys, max_len: usize) -> Self {
        Self {
            conn,
            key: keys.events(),
            max_len,
        }
    }

    /// The stream's key, for span attributes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends events (each with the trace context it belongs to) in one round trip.
    pub async fn publish(
        &self,
        events: &[(Event, Option<String>)],
    ) -> Result<Vec<String>, StreamError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (event, traceparent) in events {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg("type")
                .arg(event.kind())
                .arg("payload")
                .arg(serde_json::to_string(event)?);
            if let Some(traceparent) = traceparent {
                cmd.arg("traceparent").arg(traceparent);
            }
            pipe.add_command(cmd);
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// The id of the newest event, or "0-0" for an empty feed: where a new subscriber starts.
    pub async fn last_id(&self) -> Result<String, StreamError> {
        Ok(crate::newest::newest_id(&self.conn, &self.key)
            .await?
            .unwrap_or_else(|| "0-0".to_owned()))
    }

    /// Events after `after`, waiting up to `block` when there are none yet. `conn` should be a
    /// connection reserved for blocking reads (see [`crate::connection::connect_blocking`]).
    pub async fn read_after(
        &self,
        conn: &mut ConnectionManager,
        after: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<FeedEntry>, StreamError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.key)
            .arg(after)
            .query_async(conn)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| {
                let text = |name: &str| match entry.map.get(name) {
                    Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                    Some(Value::SimpleString(s)) => Some(s.clone()),
                    _ => None,
                };
                let event = text("payload")
                    .ok_or_else(|| "no payload".to_owned())
                    .and_then(|p| serde_json::from_str::<Event>(&p).map_err(|e| e.to_string()));
                FeedEntry {
                    traceparent: text("traceparent"),
                    id: entry.id,
                    event,
                }
            })
            .collect())
    }
}
