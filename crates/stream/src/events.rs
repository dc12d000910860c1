//! The event feed `pulse:events`: analysed posts and alerts, in the order they were stored.
//!
//! Writers append only after their database transaction committed, so a reader never sees an
//! event for data that is not in PostgreSQL. Readers follow the stream with XREAD from the last
//! id they saw, which makes every subscription resumable: [`is_event_id`] tells whether a
//! client's resume point is one, and a [`FeedReader`] follows the feed with blocking reads on a
//! connection of its own.

use std::time::Duration;

use pulse_domain::{Analysis, Post};
use redis::{Value, streams::StreamReadReply};

use crate::{
    RedisKeys, StreamError,
    connection::{Connection, connect_blocking},
};

/// Default approximate cap on the feed's length: enough for a client to resume after minutes.
pub const DEFAULT_EVENTS_MAX_LEN: usize = 100_000;

/// What happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A post was analysed and stored.
    NewPost { post: Post, analyses: Vec<Analysis> },
    /// An alert was raised; `alert_id` is its id in the database (`pulse_store::alerts`).
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

/// Whether `id` is an event id a reader can resume after: a Redis stream id, `<ms>-<seq>` or
/// `<ms>`, each part at most 20 digits. Special ids such as `$` are refused.
pub fn is_event_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    match (parts.next(), parts.next()) {
        (Some(ms), Some(seq)) => digits(ms) && digits(seq),
        (Some(ms), None) => digits(ms),
        _ => false,
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
    conn: Connection,
    key: String,
    max_len: usize,
}

impl EventFeed {
    pub fn new(conn: Connection, keys: &RedisKeys, max_len: usize) -> Self {
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

    /// A reader of this feed with its own connection to `url`, for blocking reads of up to
    /// `block` each (see [`connect_blocking`]).
    pub async fn reader(&self, url: &str, block: Duration) -> Result<FeedReader, StreamError> {
        Ok(FeedReader {
            feed: self.clone(),
            conn: connect_blocking(url, block).await?,
            block,
        })
    }

    /// Events after `after`, waiting up to `block` when there are none yet. `conn` should be a
    /// connection reserved for blocking reads (see [`connect_blocking`]).
    pub async fn read_after(
        &self,
        conn: &mut Connection,
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

/// One follower of the feed: blocking reads (XREAD BLOCK) on a connection of its own, so a
/// read that waits never delays another command.
pub struct FeedReader {
    feed: EventFeed,
    conn: Connection,
    block: Duration,
}

impl FeedReader {
    /// Up to `count` events after `after`, waiting up to the reader's block when there are none
    /// yet (then the answer is empty).
    pub async fn read_after(
        &mut self,
        after: &str,
        count: usize,
    ) -> Result<Vec<FeedEntry>, StreamError> {
        self.feed
            .read_after(&mut self.conn, after, count, self.block)
            .await
    }
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{redis_url, unique_name};

    use super::*;
    use crate::connection::connect;

    #[tokio::test]
    async fn a_reader_follows_the_feed_from_its_cursor() -> Result<(), StreamError> {
        let conn = connect(&redis_url()).await?;
        let keys = RedisKeys::new(unique_name("events"));
        let feed = EventFeed::new(conn.clone(), &keys, DEFAULT_EVENTS_MAX_LEN);
        let start = feed.last_id().await?;
        let mut reader = feed.reader(&redis_url(), Duration::from_millis(50)).await?;
        // Nothing yet: the read waits for its block and answers nothing.
        assert!(reader.read_after(&start, 10).await?.is_empty());

        let ids = feed
            .publish(&[
                (Event::Alert { alert_id: 1 }, Some("00-trace-01".into())),
                (Event::Alert { alert_id: 2 }, None),
            ])
            .await?;
        let read = reader.read_after(&start, 10).await?;
        let got: Vec<(&str, Option<&str>)> = read
            .iter()
            .map(|e| (e.id.as_str(), e.traceparent.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (ids[0].as_str(), Some("00-trace-01")),
                (ids[1].as_str(), None)
            ]
        );
        assert!(ids.iter().all(|id| is_event_id(id)));
        assert!(matches!(read[1].event, Ok(Event::Alert { alert_id: 2 })));
        assert_eq!(reader.read_after(&ids[0], 10).await?.len(), 1);

        let mut raw = conn.clone();
        let _: () = redis::cmd("DEL")
            .arg(keys.events())
            .query_async(&mut raw)
            .await?;
        Ok(())
    }

    #[test]
    fn event_ids_are_redis_stream_ids() {
        assert!(is_event_id("1700000000000-0"));
        assert!(is_event_id("1700000000000"));
        assert!(!is_event_id("$"));
        assert!(!is_event_id("1-2-3"));
        assert!(!is_event_id("abc-1"));
        assert!(!is_event_id(""));
        assert!(!is_event_id("123456789012345678901-0"));
    }
}
