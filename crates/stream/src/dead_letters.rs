//! The dead-letter stream `pulse:posts:dlq`: entries the workers gave up on, each with its
//! original fields and why, so an operator can inspect them and, once the cause is fixed, put
//! them back on the work stream.
//!
//! A replay moves one entry atomically (a Lua script: read it, append its original fields to the
//! posts stream, delete it), so two operators replaying at once never duplicate an entry and a
//! failure midway never loses one.

use std::collections::HashMap;

use redis::{Value, streams::StreamRangeReply};

use crate::{RedisKeys, StreamError, connection::Connection};

/// Id of the entry in the posts stream.
pub const FIELD_ORIGINAL_ID: &str = "dlq_original_id";
/// Why the entry was given up on.
pub const FIELD_REASON: &str = "dlq_reason";
/// How many times it had been delivered.
pub const FIELD_DELIVERIES: &str = "dlq_deliveries";
/// The consumer that gave up on it.
pub const FIELD_CONSUMER: &str = "dlq_consumer";
/// Every field the dead-letter stream adds starts with this; the others are the original ones.
const FIELD_PREFIX: &str = "dlq_";

/// Approximate cap on the dead-letter stream's length.
pub const DEFAULT_MAX_LEN: usize = 100_000;

/// Moves one dead letter back: KEYS[1] the dead-letter stream, KEYS[2] the posts stream,
/// ARGV[1] the dead letter's id. Returns the new entry id, or nil when there is no such entry.
const REPLAY_SCRIPT: &str = r"
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields = found[1][2]
local original = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 4) ~= 'dlq_' then
    table.insert(original, fields[i])
    table.insert(original, fields[i + 1])
  end
end
if #original == 0 then return redis.error_reply('dead letter ' .. ARGV[1] .. ' has no original fields') end
local id = redis.call('XADD', KEYS[2], '*', unpack(original))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
";

/// One entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream (what `replay` takes).
    pub id: String,
    pub original_id: Option<String>,
    pub reason: Option<String>,
    pub deliveries: Option<u64>,
    pub consumer: Option<String>,
    /// The original entry's fields, sorted by name.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// An original field as text, when it is UTF-8.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    fn from_fields(id: String, map: HashMap<String, Value>) -> Self {
        let text = |v: &Value| match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let mut letter = DeadLetter {
            id,
            original_id: None,
            reason: None,
            deliveries: None,
            consumer: None,
            fields: Vec::new(),
        };
        for (name, value) in map {
            match name.as_str() {
                FIELD_ORIGINAL_ID => letter.original_id = text(&value),
                FIELD_REASON => letter.reason = text(&value),
                FIELD_DELIVERIES => letter.deliveries = text(&value).and_then(|t| t.parse().ok()),
                FIELD_CONSUMER => letter.consumer = text(&value),
                other if other.starts_with(FIELD_PREFIX) => {}
                _ => {
                    let bytes = match value {
                        Value::BulkString(b) => b,
                        Value::SimpleString(s) => s.into_bytes(),
                        other => format!("{other:?}").into_bytes(),
                    };
                    letter.fields.push((name, bytes));
                }
            }
        }
        letter.fields.sort();
        letter
    }
}

/// Reader and replayer of the dead-letter stream.
#[derive(Clone)]
pub struct DeadLetters {
    conn: Connection,
    keys: RedisKeys,
}

impl DeadLetters {
    pub fn new(conn: Connection, keys: RedisKeys) -> Self {
        Self { conn, keys }
    }

    /// Entries in the dead-letter stream.
    pub async fn count(&self) -> Result<u64, StreamError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.dead_letters())
            .query_async(&mut conn)
            .await?)
    }

    /// Up to `limit` dead letters after `after` (exclusive; `None` for the oldest), oldest first.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StreamError> {
        self.range(after, "+", limit).await
    }

    async fn range(
        &self,
        after: Option<&str>,
        end: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StreamError> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.dead_letters())
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| DeadLetter::from_fields(entry.id, entry.map))
            .collect())
    }

    /// Puts dead letter `id` back on the posts stream with its original fields and removes it
    /// from the dead-letter stream, atomically. Returns the new entry id, or `None` when there
    /// is no dead letter `id` (already replayed, say).
    pub async fn replay(&self, id: &str) -> Result<Option<String>, StreamError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("EVAL")
            .arg(REPLAY_SCRIPT)
            .arg(2)
            .arg(self.keys.dead_letters())
            .arg(self.keys.posts())
            .arg(id)
            .query_async(&mut conn)
            .await?)
    }

    /// Replays every dead letter present when called, oldest first; returns (dead-letter id,
    /// new id) pairs. Entries dead-lettered again meanwhile (a replayed entry that still
    /// fails) are left for the next call instead of going round in circles.
    pub async fn replay_all(&self) -> Result<Vec<(String, String)>, StreamError> {
        let Some(end) = crate::newest::newest_id(&self.conn, &self.keys.dead_letters()).await?
        else {
            return Ok(Vec::new());
        };
        let mut replayed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.range(after.as_deref(), &end, 100).await?;
            let Some(last) = page.last() else {
                return Ok(replayed);
            };
            after = Some(last.id.clone());
            for letter in page {
                if let Some(new_id) = self.replay(&letter.id).await? {
                    replayed.push((letter.id, new_id));
                }
            }
        }
    }
}
