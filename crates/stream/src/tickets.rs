//! Single-use tickets that expire: a value stored under a random name, handed out once and
//! taken back once. The gateway gives browsers one to open a WebSocket, since a browser cannot
//! set an `Authorization` header on the upgrade request; a ticket that leaks (in a log of URLs,
//! say) is worthless after its first use or a few seconds.

use std::time::Duration;

use crate::{StreamError, connection::Connection};

/// Stores `value` at `key` for `ttl`; false when `key` exists already (never overwritten).
pub async fn issue(
    conn: &Connection,
    key: &str,
    value: &str,
    ttl: Duration,
) -> Result<bool, StreamError> {
    let mut conn = conn.clone();
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}

/// Takes the value at `key` and deletes it in one step (GETDEL): a second redemption finds
/// nothing.
pub async fn redeem(conn: &Connection, key: &str) -> Result<Option<String>, StreamError> {
    let mut conn = conn.clone();
    Ok(redis::cmd("GETDEL").arg(key).query_async(&mut conn).await?)
}

#[cfg(test)]
mod tests {
    use pulse_testkit::{redis_url, unique_name};

    use super::*;
    use crate::{RedisKeys, connection::connect};

    #[tokio::test]
    async fn a_ticket_is_redeemed_once_and_expires() -> Result<(), StreamError> {
        let conn = connect(&redis_url()).await?;
        let keys = RedisKeys::new(unique_name("tickets"));
        let key = keys.websocket_ticket("t1");
        assert!(issue(&conn, &key, "key-id", Duration::from_secs(5)).await?);
        assert!(!issue(&conn, &key, "other", Duration::from_secs(5)).await?);
        assert_eq!(redeem(&conn, &key).await?.as_deref(), Some("key-id"));
        assert_eq!(redeem(&conn, &key).await?, None);

        let short = keys.websocket_ticket("t2");
        assert!(issue(&conn, &short, "key-id", Duration::from_millis(50)).await?);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(redeem(&conn, &short).await?, None);
        Ok(())
    }
}
