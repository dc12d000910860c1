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
            "SELECT id, alert_type, threshold_value, actual_value, window_start, window_end,
                    post_count, triggered_at, details
             FROM sentiment_alerts
             WHERE ($2::timestamptz IS NULL OR triggered_at >= $2)
             ORDER BY triggered_at DESC, id DESC
             LIMIT $1",
            &[&limit, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| StoredAlert {
            id: row.get(0),
            alert_type: row.get(1),
            threshold_value: row.get(2),
            actual_value: row.get(3),
            window_start: row.get(4),
            window_end: row.get(5),
            post_count: row.get(6),
            triggered_at: row.get(7),
            details: row.get(8),
        })
        .collect())
}
