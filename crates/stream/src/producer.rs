//! Appending posts to the work stream.

use crate::{Backlog, PostEntry, RedisKeys, StreamError, backlog, connection::Connection};

/// Default approximate cap on the work stream's length: a last resort far above any backlog the
/// ingesters allow (their high-water mark), so it can never drop an entry still pending. In
/// normal operation the workers trim processed entries ([`crate::trim`]) long before it.
pub const DEFAULT_MAX_LEN: usize = 1_000_000;

/// Publishes posts with XADD, capping the stream approximately (`MAXLEN ~`) so Redis memory
/// stays bounded even if no worker ever trims.
#[derive(Clone)]
pub struct Producer {
    conn: Connection,
    key: String,
    max_len: usize,
}

impl Producer {
    pub fn new(conn: Connection, keys: &RedisKeys, max_len: usize) -> Self {
        Self {
            conn,
            key: keys.posts(),
            max_len,
        }
    }

    /// Appends one post; returns its entry id.
    pub async fn publish(&self, entry: &PostEntry) -> Result<String, StreamError> {
        let mut conn = self.conn.clone();
        let id: String = self.xadd(entry).query_async(&mut conn).await?;
        Ok(id)
    }

    /// Appends posts in one round trip (a pipeline, so all are written or the call fails);
    /// returns their entry ids in order.
    pub async fn publish_many(&self, entries: &[PostEntry]) -> Result<Vec<String>, StreamError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for entry in entries {
            pipe.add_command(self.xadd(entry));
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// Entries in the work stream.
    pub async fn stream_len(&self) -> Result<u64, StreamError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(&self.key)
            .query_async(&mut conn)
            .await?)
    }

    /// The workers group's backlog, which producers throttle on.
    pub async fn backlog(&self) -> Result<Backlog, StreamError> {
        backlog::read(&self.conn, &self.key).await
    }

    fn xadd(&self, entry: &PostEntry) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*");
        for (field, value) in entry.to_fields() {
            cmd.arg(field).arg(value);
        }
        cmd
    }
}
