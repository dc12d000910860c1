//! Trimming the work stream without dropping work.
//!
//! Only entries that every consumer group has finished with are removed: the stream is cut with
//! `XTRIM MINID ~` below the oldest entry still pending in any group or, in a group with nothing
//! pending, below the last entry it delivered. Entries not delivered yet and entries in a
//! pending list always sit at or above that floor, and the floor computed from a slightly stale
//! view is only lower (deliveries and acknowledgements move it up), so a race with the workers
//! never trims too much. `~` lets Redis drop whole nodes only, which trims less, never more.

use std::collections::HashMap;

use redis::Value;

use crate::{RedisKeys, StreamError, connection::Connection};

/// What one trim did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrimOutcome {
    /// Entries below this id were eligible; `None` when nothing could be trimmed (no stream,
    /// no group, or nothing delivered yet).
    pub floor: Option<String>,
    /// Entries removed.
    pub removed: u64,
}

/// A stream entry id as its two numbers, for ordering ("1700000000000-3" → (1700000000000, 3)).
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Removes the entries of the posts stream that every group has acknowledged.
pub async fn trim_processed(
    conn: &Connection,
    keys: &RedisKeys,
) -> Result<TrimOutcome, StreamError> {
    let mut conn = conn.clone();
    let key = keys.posts();
    let groups: Vec<HashMap<String, Value>> = match redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&key)
        .query_async(&mut conn)
        .await
    {
        Ok(groups) => groups,
        Err(e) if e.code() == Some("ERR") => return Ok(TrimOutcome::default()),
        Err(e) => return Err(e.into()),
    };
    if groups.is_empty() {
        // Nobody consumes the stream yet: everything in it is unread.
        return Ok(TrimOutcome::default());
    }
    let mut floor: Option<(u64, u64)> = None;
    for group in &groups {
        let text = |field: &str| match group.get(field) {
            Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
            Some(Value::SimpleString(s)) => Some(s.clone()),
            _ => None,
        };
        let pending = match group.get("pending") {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let (Some(name), Some(last_delivered)) = (text("name"), text("last-delivered-id")) else {
            // A group we cannot read: keep everything.
            return Ok(TrimOutcome::default());
        };
        let mut group_floor = parse_id(&last_delivered);
        if pending > 0 {
            let summary: Value = redis::cmd("XPENDING")
                .arg(&key)
                .arg(&name)
                .query_async(&mut conn)
                .await?;
            // [count, smallest id, greatest id, consumers]; count 0 means all were
            // acknowledged since XINFO, and then the last delivered id is a safe floor.
            if let Value::Array(items) = summary
                && let Some(Value::BulkString(smallest)) = items.get(1)
            {
                group_floor = std::str::from_utf8(smallest).ok().and_then(parse_id);
            }
        }
        let Some(group_floor) = group_floor else {
            return Ok(TrimOutcome::default());
        };
        floor = Some(floor.map_or(group_floor, |f| f.min(group_floor)));
    }
    let Some((ms, seq)) = floor.filter(|f| *f != (0, 0)) else {
        return Ok(TrimOutcome::default());
    };
    let floor = format!("{ms}-{seq}");
    let removed: u64 = redis::cmd("XTRIM")
        .arg(&key)
        .arg("MINID")
        .arg("~")
        .arg(&floor)
        .query_async(&mut conn)
        .await?;
    Ok(TrimOutcome {
        floor: Some(floor),
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_numerically() {
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert_eq!(parse_id("5"), Some((5, 0)));
        assert_eq!(parse_id("x-1"), None);
        assert!(parse_id("9-10") > parse_id("9-9"));
        assert!(parse_id("10-0") > parse_id("9-99"));
    }
}
