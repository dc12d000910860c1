//! How much work the consumer group has left: what producers throttle on and what the worker
//! reports.

use std::collections::HashMap;

use redis::Value;

use crate::{StreamError, connection::Connection, keys::WORKER_GROUP};

/// The workers group's backlog on the posts stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Entries delivered to a worker and not acknowledged yet.
    pub pending: u64,
    /// Entries not delivered yet; `None` when Redis cannot tell (after deletions) or when the
    /// group does not exist yet.
    pub lag: Option<u64>,
    /// Entries in the stream, processed or not (XLEN).
    pub length: u64,
}

impl Backlog {
    /// Entries not yet processed: pending plus lag, or the whole stream when the lag is unknown
    /// (an over-estimate, so a producer that throttles on it errs on the safe side).
    pub fn unprocessed(&self) -> u64 {
        match self.lag {
            Some(lag) => self.pending.saturating_add(lag),
            None => self.length,
        }
    }
}

/// Reads the backlog of the workers group on stream `key` (XINFO GROUPS and XLEN in one
/// round trip). A stream that does not exist yet has an empty backlog.
pub(crate) async fn read(conn: &Connection, key: &str) -> Result<Backlog, StreamError> {
    let mut conn = conn.clone();
    let mut pipe = redis::pipe();
    pipe.cmd("XLEN")
        .arg(key)
        .cmd("XINFO")
        .arg("GROUPS")
        .arg(key);
    let (length, groups): (u64, Vec<HashMap<String, Value>>) =
        match pipe.query_async(&mut conn).await {
            Ok(reply) => reply,
            // XINFO on a missing key answers "ERR no such key".
            Err(e) if is_no_such_key(&e) => return Ok(Backlog::default()),
            Err(e) => return Err(e.into()),
        };
    let group = groups.into_iter().find(
        |g| matches!(g.get("name"), Some(Value::BulkString(n)) if n == WORKER_GROUP.as_bytes()),
    );
    let int = |g: &HashMap<String, Value>, key: &str| match g.get(key) {
        Some(Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    Ok(group.map_or(
        Backlog {
            pending: 0,
            lag: None,
            length,
        },
        |g| Backlog {
            pending: int(&g, "pending").unwrap_or(0),
            lag: int(&g, "lag"),
            length,
        },
    ))
}

fn is_no_such_key(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR") && e.detail().is_some_and(|d| d.contains("no such key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_lag_counts_the_whole_stream() {
        let known = Backlog {
            pending: 3,
            lag: Some(4),
            length: 100,
        };
        assert_eq!(known.unprocessed(), 7);
        let unknown = Backlog { lag: None, ..known };
        assert_eq!(unknown.unprocessed(), 100);
    }
}
