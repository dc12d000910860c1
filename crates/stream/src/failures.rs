//! The failures each pending entry of the posts stream had because of its own content.
//!
//! An entry is given up on (dead-lettered) after `MAX_DELIVERIES` failures that are its own
//! fault: a text inference refuses or fails on, a row the database rejects. Failures of a
//! dependency (PostgreSQL, Redis or inference unavailable or too slow) are not counted at all,
//! however long the outage and however often the entry is delivered meanwhile.
//!
//! The count lives in Redis, one small hash per entry (`<prefix>:posts:failures:<id>`, fields
//! `count` and `last_error`), written with `HINCRBY` when a worker attributes a failure to the
//! entry and deleted in the same `MULTI` that acknowledges or dead-letters it. This is what
//! stays right with several worker processes and crashes:
//!
//! - the count belongs to the entry, not to a process, so it survives a worker's death and
//!   follows the entry to whichever worker claims it; `HINCRBY` is atomic, so two workers
//!   that each saw a failure count two;
//! - an outage never touches it, whereas the stream's own delivery counter grows with every
//!   read after an outage, every claim and every restart;
//! - a crash between a failure and its `HINCRBY` loses one increment, which costs one more try,
//!   never a healthy entry.
//!
//! Giving deliveries back on the stream's counter instead (`XCLAIM ... RETRYCOUNT n-1` after a
//! transient failure) would need a read of the counter and a write of a new absolute value, a
//! lost update when two workers touch the entry; `XCLAIM` also resets the entry's idle time and
//! owner, which the reclaim of dead workers' entries relies on; and a worker that dies before
//! giving the delivery back has still spent it.
//!
//! Each hash expires [`FAILURES_TTL`] after its last failure, so an entry that leaves the
//! pending list some other way (a trim past the backlog) leaves nothing behind for long.

use std::{collections::HashMap, time::Duration};

use crate::{RedisKeys, StreamError, connection::Connection};

/// How long a failure count outlives the entry's last failure.
pub const FAILURES_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const FIELD_COUNT: &str = "count";
const FIELD_LAST_ERROR: &str = "last_error";

/// What an entry's own content has cost so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFailures {
    pub count: u64,
    pub last_error: Option<String>,
}

/// Counts one failure of entry `id` caused by its content; returns the entry's count so far.
pub(crate) async fn record(
    conn: &Connection,
    keys: &RedisKeys,
    id: &str,
    error: &str,
) -> Result<u64, StreamError> {
    let key = keys.entry_failures(id);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("HINCRBY")
        .arg(&key)
        .arg(FIELD_COUNT)
        .arg(1)
        .cmd("HSET")
        .arg(&key)
        .arg(FIELD_LAST_ERROR)
        .arg(error)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(FAILURES_TTL.as_secs())
        .ignore();
    let mut conn = conn.clone();
    let (count,): (u64,) = pipe.query_async(&mut conn).await?;
    Ok(count)
}

/// The counts of `ids`; entries that never failed by their own fault are left out.
pub(crate) async fn read(
    conn: &Connection,
    keys: &RedisKeys,
    ids: &[String],
) -> Result<HashMap<String, EntryFailures>, StreamError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET")
            .arg(keys.entry_failures(id))
            .arg(FIELD_COUNT)
            .arg(FIELD_LAST_ERROR);
    }
    let mut conn = conn.clone();
    let rows: Vec<(Option<u64>, Option<String>)> = pipe.query_async(&mut conn).await?;
    Ok(ids
        .iter()
        .zip(rows)
        .filter_map(|(id, (count, last_error))| {
            count.map(|count| (id.clone(), EntryFailures { count, last_error }))
        })
        .collect())
}

/// Adds the deletion of the counts of `ids` to `pipe`.
pub(crate) fn forget(pipe: &mut redis::Pipeline, keys: &RedisKeys, ids: &[String]) {
    if !ids.is_empty() {
        let mut del = redis::cmd("DEL");
        for id in ids {
            del.arg(keys.entry_failures(id));
        }
        pipe.add_command(del).ignore();
    }
}
