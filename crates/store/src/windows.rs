//! Statistics over a window of arrival time (`ingested_at`), for the alert monitor.
//!
//! Arrival time rather than `created_at` because alerts are about what the platform is
//! receiving now; a replayed archive with old timestamps must not look like silence.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::StoreError;

/// Sentiment counts of the posts that arrived in a window (latest analysis per post).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowCounts {
    pub total: u64,
    pub negative: u64,
}

/// A negative post quoted in an alert's details.
#[derive(Debug, Clone, PartialEq)]
pub struct NegativePost {
    pub post_id: String,
    pub source: String,
    pub author: String,
    pub content: String,
    pub confidence: f32,
}

/// Posts per source in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceCounts {
    pub source: String,
    pub total: u64,
    pub negative: u64,
}

const LATEST: &str = "JOIN LATERAL (
         SELECT s.sentiment_label, s.confidence_score
         FROM sentiment_analysis s
         WHERE s.post_id = p.post_id
         ORDER BY s.analyzed_at DESC
         LIMIT 1
     ) a ON TRUE";

fn count(row: &tokio_postgres::Row, i: usize) -> u64 {
    u64::try_from(row.get::<_, i64>(i)).unwrap_or_default()
}

/// Analysed posts that arrived in `[from, to)`, and how many of them are negative.
pub async fn counts(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<WindowCounts, StoreError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE a.sentiment_label = 'negative')
                 FROM social_media_posts p {LATEST}
                 WHERE p.ingested_at >= $1 AND p.ingested_at < $2"
            ),
            &[&from, &to],
        )
        .await?;
    Ok(WindowCounts {
        total: count(&row, 0),
        negative: count(&row, 1),
    })
}

/// Posts that arrived in each of `windows` consecutive windows of `width` ending at `end`,
/// oldest first: the baseline of the volume rule.
pub async fn volume_history(
    client: &Client,
    end: DateTime<Utc>,
    width: chrono::Duration,
    windows: u32,
) -> Result<Vec<u64>, StoreError> {
    let width_us = width.num_microseconds().unwrap_or(i64::MAX).max(1);
    let windows = i64::from(windows);
    let rows = client
        .query(
            "WITH w AS (SELECT generate_series(1, $3::bigint) AS n)
             SELECT w.n, count(p.id)
             FROM w LEFT JOIN social_media_posts p
               ON p.ingested_at >= $1::timestamptz - (w.n * $2::bigint) * interval '1 microsecond'
              AND p.ingested_at <  $1::timestamptz - ((w.n - 1) * $2::bigint) * interval '1 microsecond'
             GROUP BY w.n ORDER BY w.n DESC",
            &[&end, &width_us, &windows],
        )
        .await?;
    Ok(rows.iter().map(|row| count(row, 1)).collect())
}

/// The most confidently negative posts that arrived in `[from, to)`.
pub async fn top_negative(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<NegativePost>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT p.post_id, p.source, p.author, left(p.content, 280), a.confidence_score
                 FROM social_media_posts p {LATEST}
                 WHERE p.ingested_at >= $1 AND p.ingested_at < $2
                   AND a.sentiment_label = 'negative'
                 ORDER BY a.confidence_score DESC, p.ingested_at DESC
                 LIMIT $3"
            ),
            &[&from, &to, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| NegativePost {
            post_id: row.get(0),
            source: row.get(1),
            author: row.get(2),
            content: row.get(3),
            confidence: row.get(4),
        })
        .collect())
}

/// Posts and negative posts per source that arrived in `[from, to)`, busiest first.
pub async fn sources(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SourceCounts>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT p.source, count(*), count(*) FILTER (WHERE a.sentiment_label = 'negative')
                 FROM social_media_posts p {LATEST}
                 WHERE p.ingested_at >= $1 AND p.ingested_at < $2
                 GROUP BY p.source ORDER BY 2 DESC, 1"
            ),
            &[&from, &to],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| SourceCounts {
            source: row.get(0),
            total: count(row, 1),
            negative: count(row, 2),
        })
        .collect())
}
