//! The newest entry of a stream: where a new reader starts, or where a replay stops.

use redis::streams::StreamRangeReply;

use crate::{StreamError, connection::Connection};

/// The id of the newest entry of the stream at `key`; `None` when it is empty or absent.
pub(crate) async fn newest_id(conn: &Connection, key: &str) -> Result<Option<String>, StreamError> {
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
