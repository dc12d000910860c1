//! Week partitions ahead of the writes, and retention behind them.
//!
//! `social_media_posts` and `sentiment_analysis` are partitioned by UTC week of arrival, Monday
//! to Monday (migration 0006, which says why weeks). A write for a week without a partition
//! fails, so [`maintain`] creates the coming weeks' partitions ahead. It also drops the weeks
//! that ended before the raw retention's cutoff, whole (no row-by-row delete, no table bloat),
//! then deletes the keys of their posts and the minute rollups before the same boundary in
//! batches, and the hour and day rollups older than their own, longer retention. Posts are thus
//! kept `RETENTION_DAYS` and at most six days more. Several instances may call it: one at a
//! time does the work, the others return at once.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::StoreError;

/// Arbitrary key of the advisory lock held while maintaining partitions.
const MAINTENANCE_LOCK_KEY: i64 = 0x7075_6c73_655f_7074;

/// Rows deleted per statement, so that retention never holds locks or builds WAL for long.
const DELETE_BATCH: i64 = 10_000;

/// How long to keep what; `None` keeps forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Days of posts, analyses and minute rollups, terms' included (dropped a whole week at a
    /// time).
    pub raw_days: Option<u32>,
    /// Days of hour and day rollups, terms' included (charts, distributions and insights over
    /// long ranges).
    pub rollup_days: Option<u32>,
}

impl Retention {
    /// From day counts where 0 means "keep forever", as the settings spell it.
    pub fn from_days(raw_days: u32, rollup_days: u32) -> Self {
        Retention {
            raw_days: (raw_days > 0).then_some(raw_days),
            rollup_days: (rollup_days > 0).then_some(rollup_days),
        }
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintained {
    pub partitions_created: u32,
    pub weeks_dropped: u32,
    pub keys_deleted: u64,
    pub rollup_rows_deleted: u64,
}

fn day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// The Monday that starts the week of `day`: partitions begin there.
fn week_start(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

/// Creates the partitions of the weeks of today and the next `ahead_days`, and applies `retention`; logs
/// what it changed. Returns `None` when another instance holds the maintenance lock.
pub async fn maintain(
    client: &mut Client,
    now: DateTime<Utc>,
    ahead_days: u32,
    retention: Retention,
) -> Result<Option<Maintained>, StoreError> {
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&MAINTENANCE_LOCK_KEY],
        )
        .await?
        .get(0);
    if !locked {
        return Ok(None);
    }
    // Dropping a partition waits for the queries reading it; a long one must not queue every
    // later query of the table behind this lock. The next pass tries again.
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    let first = day(now);
    let last = day(now + TimeDelta::days(i64::from(ahead_days)));
    let created: i32 = tx
        .query_one(
            "SELECT pulse_create_week_partitions($1, $2)",
            &[&first, &last],
        )
        .await?
        .get(0);
    // Weeks that ended on or before the Monday of the cutoff's week are dropped; everything
    // before that Monday goes with them, and nothing after it.
    let raw_boundary = retention
        .raw_days
        .map(|days| week_start(day(now - TimeDelta::days(i64::from(days)))));
    let dropped: i32 = match raw_boundary {
        Some(boundary) => tx
            .query_one("SELECT pulse_drop_week_partitions($1)", &[&boundary])
            .await?
            .get(0),
        None => 0,
    };
    tx.commit().await?;

    let mut done = Maintained {
        partitions_created: u32::try_from(created).unwrap_or_default(),
        weeks_dropped: u32::try_from(dropped).unwrap_or_default(),
        ..Maintained::default()
    };
    if let Some(boundary) = raw_boundary {
        let cutoff = cutoff_instant(boundary);
        done.keys_deleted = delete_before(client, "post_keys", "ingested_at", cutoff).await?;
        for (table, column) in [
            ("sentiment_minutes", "minute"),
            ("arrival_minutes", "minute"),
            ("term_minutes", "minute"),
        ] {
            done.rollup_rows_deleted += delete_before(client, table, column, cutoff).await?;
        }
    }
    if let Some(days) = retention.rollup_days {
        let cutoff = cutoff_instant(day(now - TimeDelta::days(i64::from(days))));
        for (table, column) in [
            ("sentiment_hours", "hour"),
            ("sentiment_days", "day"),
            ("term_hours", "hour"),
        ] {
            done.rollup_rows_deleted += delete_before(client, table, column, cutoff).await?;
        }
    }
    if done != Maintained::default() {
        tracing::info!(
            partitions_created = done.partitions_created,
            weeks_dropped = done.weeks_dropped,
            keys_deleted = done.keys_deleted,
            rollup_rows_deleted = done.rollup_rows_deleted,
            "partitions maintained"
        );
    }
    Ok(Some(done))
}

fn cutoff_instant(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .map(|midnight| midnight.and_utc())
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Deletes the rows of `table` whose `column` is before `cutoff`, a batch at a time until a
/// batch deletes less than a full one; returns the rows deleted.
async fn delete_before(
    client: &Client,
    table: &str,
    column: &str,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let statement = format!(
        "DELETE FROM {table} WHERE ctid IN (
             SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2)"
    );
    let mut deleted = 0;
    loop {
        let batch = client
            .execute(&statement, &[&cutoff, &DELETE_BATCH])
            .await?;
        deleted += batch;
        if batch < DELETE_BATCH.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

/// The Mondays that start a partition of `social_media_posts`, oldest first.
pub async fn weeks(client: &Client) -> Result<Vec<NaiveDate>, StoreError> {
    let rows = client
        .query(
            "SELECT to_date(right(c.relname, 8), 'YYYYMMDD')
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class parent ON parent.oid = i.inhparent
             WHERE parent.relname = 'social_media_posts' AND c.relname ~ '_p[0-9]{8}$'
             ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let date = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("valid date");
        assert_eq!(week_start(date(30)), date(30), "a Monday");
        assert_eq!(week_start(date(29)), date(23), "a Sunday");
        assert_eq!(week_start(date(25)), date(23));
    }
}
