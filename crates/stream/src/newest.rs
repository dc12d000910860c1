//! The newest entry of a stream: where a new reader starts, or where a replay stops.

use redis::{aio::ConnectionManager, streams::StreamRangeReply};

use crate::StreamError;

/// The id of the newest entry of the stream at `key`; `None` when it is empty or absent.
pub(crate) async fn newest_id(
    conn: &ConnectionManager,
    key: &str,
) -> Result<Option<String>, StreamError> {
    let mut conn = conn.clone();
    let reply: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await?;
    Ok(reply.ids.into_iter().next().map(|entry| entry.id))
}
