//! Reading the work stream as one member of the `workers` consumer group.
//!
//! Delivery is at least once: an entry stays in the group's pending list until [`ack`] is
//! called, which the worker does only after the entry's result is committed. Entries of a
//! consumer that died are taken over with XAUTOCLAIM once idle for longer than any batch can
//! take. Entries that cannot be decoded, or that failed too often, are copied to the
//! dead-letter stream with the reason and then acknowledged, so they stop blocking the flow.
//!
//! [`ack`]: GroupConsumer::ack

use std::{collections::HashMap, time::Duration};

use redis::{
    Value,
    streams::{StreamAutoClaimReply, StreamId, StreamReadReply},
};

use crate::{
    Backlog, EntryFailures, RedisKeys, StreamError, backlog,
    codec::raw_fields,
    connection::Connection,
    dead_letters::{self, FIELD_CONSUMER, FIELD_DELIVERIES, FIELD_ORIGINAL_ID, FIELD_REASON},
    failures,
    keys::WORKER_GROUP,
};

/// One entry handed to this consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub fields: HashMap<String, Value>,
}

impl From<StreamId> for Delivery {
    fn from(entry: StreamId) -> Self {
        Delivery {
            id: entry.id,
            fields: entry.map,
        }
    }
}

impl Delivery {
    /// True for an entry that was deleted from the stream while it was pending: Redis still
    /// delivers its id, without fields (an entry always has at least one).
    pub fn is_deleted(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A named member of the workers' consumer group.
#[derive(Clone)]
pub struct GroupConsumer {
    /// For commands that do not block.
    conn: Connection,
    /// For XREADGROUP BLOCK only.
    blocking: Connection,
    keys: RedisKeys,
    consumer: String,
}

impl GroupConsumer {
    pub fn new(
        conn: Connection,
        blocking: Connection,
        keys: RedisKeys,
        consumer: impl Into<String>,
    ) -> Self {
        Self {
            conn,
            blocking,
            keys,
            consumer: consumer.into(),
        }
    }

    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The work stream's key, for span attributes.
    pub fn stream_key(&self) -> String {
        self.keys.posts()
    }

    /// Creates the stream and the group unless they exist. New groups start at the beginning
    /// of the stream (`0`), so posts published before the first worker started are processed.
    pub async fn ensure_group(&self) -> Result<(), StreamError> {
        let mut conn = self.conn.clone();
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.posts())
            .arg(WORKER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// New entries for this consumer, waiting up to `block` for the first one.
    pub async fn read_new(
        &self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, StreamError> {
        self.read_from(">", count, Some(block)).await
    }

    /// Entries already delivered to this consumer and not yet acknowledged (after a restart
    /// under the same name), starting after `after` (use "0" first).
    pub async fn read_own_pending(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<Delivery>, StreamError> {
        self.read_from(after, count, None).await
    }

    async fn read_from(
        &self,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, StreamError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(WORKER_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX));
        }
        cmd.arg("STREAMS").arg(self.keys.posts()).arg(id);
        let mut conn = if block.is_some() {
            self.blocking.clone()
        } else {
            self.conn.clone()
        };
        let reply: Option<StreamReadReply> = cmd.query_async(&mut conn).await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(Delivery::from)
            .collect())
    }

    /// Takes over entries idle for at least `min_idle` from any consumer of the group, starting
    /// the scan at `cursor` ("0-0" first). Returns the claimed entries and the next cursor
    /// ("0-0" once the whole pending list has been scanned).
    pub async fn autoclaim(
        &self,
        min_idle: Duration,
        cursor: &str,
        count: usize,
    ) -> Result<(Vec<Delivery>, String), StreamError> {
        let mut conn = self.conn.clone();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(self.keys.posts())
            .arg(WORKER_GROUP)
            .arg(&self.consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        // Entries trimmed away while pending are dropped from the PEL by XAUTOCLAIM itself.
        Ok((
            reply.claimed.into_iter().map(Delivery::from).collect(),
            reply.next_stream_id,
        ))
    }

    /// How many times each entry has been delivered (its count in the pending list); entries
    /// that are not pending are left out. One exact XPENDING range per id, in one round trip.
    pub async fn delivery_counts(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, u64>, StreamError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING")
                .arg(self.keys.posts())
                .arg(WORKER_GROUP)
                .arg(id)
                .arg(id)
                .arg(1);
        }
        let mut conn = self.conn.clone();
        let rows: Vec<Vec<(String, String, u64, u64)>> = pipe.query_async(&mut conn).await?;
        Ok(rows
            .into_iter()
            .flatten()
            .map(|(id, _, _, count)| (id, count))
            .collect())
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StreamError> {
        crate::connection::ping(&self.conn).await
    }

    /// Acknowledges processed entries; returns how many were still pending.
    pub async fn ack(&self, ids: &[String]) -> Result<u64, StreamError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XACK")
            .arg(self.keys.posts())
            .arg(WORKER_GROUP)
            .arg(ids)
            .query_async(&mut conn)
            .await?)
    }

    /// Copies an entry to the dead-letter stream with the reason, then acknowledges it, in one
    /// MULTI so the entry is never in neither place.
    pub async fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        deliveries: u64,
    ) -> Result<(), StreamError> {
        let (xadd, xack) = self.dead_letter_commands(delivery, reason, deliveries);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(xadd)
            .ignore()
            .add_command(xack)
            .ignore();
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// The XADD of a dead letter (the entry's fields with the reason, capped stream) and the
    /// XACK that must go with it in one MULTI.
    fn dead_letter_commands(
        &self,
        delivery: &Delivery,
        reason: &str,
        deliveries: u64,
    ) -> (redis::Cmd, redis::Cmd) {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(self.keys.dead_letters())
            .arg("MAXLEN")
            .arg("~")
            .arg(dead_letters::DEFAULT_MAX_LEN)
            .arg("*")
            .arg(FIELD_ORIGINAL_ID)
            .arg(&delivery.id)
            .arg(FIELD_REASON)
            .arg(reason)
            .arg(FIELD_DELIVERIES)
            .arg(deliveries)
            .arg(FIELD_CONSUMER)
            .arg(&self.consumer);
        for (field, value) in raw_fields(&delivery.fields) {
            xadd.arg(field).arg(value);
        }
        let mut xack = redis::cmd("XACK");
        xack.arg(self.keys.posts())
            .arg(WORKER_GROUP)
            .arg(&delivery.id);
        (xadd, xack)
    }

    /// Counts one failure of entry `id` caused by its own content, with the error; returns the
    /// entry's count so far (see [`crate::failures`]).
    pub async fn record_failure(&self, id: &str, error: &str) -> Result<u64, StreamError> {
        failures::record(&self.conn, &self.keys, id, error).await
    }

    /// The failure counts of `ids`; entries that never failed by their own fault are left out.
    pub async fn failures(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, EntryFailures>, StreamError> {
        failures::read(&self.conn, &self.keys, ids).await
    }

    /// Acknowledges processed entries and deletes their failure counts, in one MULTI; returns
    /// how many were still pending.
    pub async fn ack_and_forget(&self, ids: &[String]) -> Result<u64, StreamError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut xack = redis::cmd("XACK");
        xack.arg(self.keys.posts()).arg(WORKER_GROUP).arg(ids);
        let mut pipe = redis::pipe();
        pipe.atomic().add_command(xack);
        failures::forget(&mut pipe, &self.keys, ids);
        let mut conn = self.conn.clone();
        let (acked,): (u64,) = pipe.query_async(&mut conn).await?;
        Ok(acked)
    }

    /// [`GroupConsumer::dead_letter`], also deleting the entry's failure count, in one MULTI
    /// that measures the dead-letter stream before and after: returns how many older dead
    /// letters the stream's cap ([`dead_letters::DEFAULT_MAX_LEN`]) trimmed to make room, so
    /// that no dead letter is dropped without a trace.
    pub async fn dead_letter_and_forget(
        &self,
        delivery: &Delivery,
        reason: &str,
        deliveries: u64,
    ) -> Result<u64, StreamError> {
        let dlq = self.keys.dead_letters();
        let (xadd, xack) = self.dead_letter_commands(delivery, reason, deliveries);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XLEN")
            .arg(&dlq)
            .add_command(xadd)
            .ignore()
            .add_command(xack)
            .ignore();
        failures::forget(&mut pipe, &self.keys, std::slice::from_ref(&delivery.id));
        pipe.cmd("XLEN").arg(&dlq);
        let mut conn = self.conn.clone();
        let (before, after): (u64, u64) = pipe.query_async(&mut conn).await?;
        Ok((before + 1).saturating_sub(after))
    }

    /// Entries in the dead-letter stream.
    pub async fn dead_letter_count(&self) -> Result<u64, StreamError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.dead_letters())
            .query_async(&mut conn)
            .await?)
    }

    /// The group's backlog: entries delivered but not acknowledged, entries not yet delivered,
    /// and the stream's length.
    pub async fn backlog(&self) -> Result<Backlog, StreamError> {
        backlog::read(&self.conn, &self.keys.posts()).await
    }

    /// Removes entries every group has finished with (see [`crate::trim`]).
    pub async fn trim_processed(&self) -> Result<crate::trim::TrimOutcome, StreamError> {
        crate::trim::trim_processed(&self.conn, &self.keys).await
    }

    /// Entries in the posts stream.
    pub async fn stream_len(&self) -> Result<u64, StreamError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.posts())
            .query_async(&mut conn)
            .await?)
    }

    /// Entries of the group not yet acknowledged.
    pub async fn pending_count(&self) -> Result<u64, StreamError> {
        let mut conn = self.conn.clone();
        let summary: Value = redis::cmd("XPENDING")
            .arg(self.keys.posts())
            .arg(WORKER_GROUP)
            .query_async(&mut conn)
            .await?;
        match summary {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or_default()),
                _ => Ok(0),
            },
            _ => Ok(0),
        }
    }
}
