//! Stored alerts.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::StoreError;

/// A raised alert as stored in `sentiment_alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub id: i64,
    pub alert_type: String,
    pub threshold_value: f64,
    pub actual_value: f64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub post_count: i32,
    pub triggered_at: DateTime<Utc>,
    pub details: serde_json::Value,
}

/// The newest alerts, optionally only those triggered at or after `since`.
pub async fn list(
    client: &Client,
    limit: i64,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<StoredAlert>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM sentiment_alerts
                 WHERE ($2::timestamptz IS NULL OR triggered_at >= $2)
                 ORDER BY triggered_at DESC, id DESC
                 LIMIT $1"
            ),
            &[&limit, &since],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// An alert about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub alert_type: String,
    pub threshold_value: f64,
    pub actual_value: f64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub post_count: i32,
    pub details: serde_json::Value,
}

const COLUMNS: &str = "id, alert_type, threshold_value, actual_value, window_start, window_end,
                       post_count, triggered_at, details";

fn from_row(row: &tokio_postgres::Row) -> StoredAlert {
    StoredAlert {
        id: row.get(0),
        alert_type: row.get(1),
        threshold_value: row.get(2),
        actual_value: row.get(3),
        window_start: row.get(4),
        window_end: row.get(5),
        post_count: row.get(6),
        triggered_at: row.get(7),
        details: row.get(8),
    }
}

/// Stores a raised alert and returns it with its id and trigger time.
pub async fn insert(client: &Client, alert: &NewAlert) -> Result<StoredAlert, StoreError> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO sentiment_alerts (alert_type, threshold_value, actual_value,
                     window_start, window_end, post_count, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 RETURNING {COLUMNS}"
            ),
            &[
                &alert.alert_type,
                &alert.threshold_value,
                &alert.actual_value,
                &alert.window_start,
                &alert.window_end,
                &alert.post_count,
                &alert.details,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

/// One alert by id.
pub async fn get(client: &Client, id: i64) -> Result<Option<StoredAlert>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM sentiment_alerts WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// The newest alert of `alert_type`, if any: lets a new leader know whether the condition it
/// sees was already reported.
pub async fn latest_of_type(
    client: &Client,
    alert_type: &str,
) -> Result<Option<StoredAlert>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM sentiment_alerts WHERE alert_type = $1
                 ORDER BY triggered_at DESC, id DESC LIMIT 1"
            ),
            &[&alert_type],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}
