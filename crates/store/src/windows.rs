//! Statistics over a window of arrival time (`ingested_at`), for the alert monitor.
//!
//! Arrival time rather than `created_at` because alerts are about what the platform is
//! receiving now; a replayed archive with old timestamps must not look like silence.
//!
//! Counts read the window's whole minutes from `arrival_minutes` and only its ragged ends from
//! the posts (see [`crate::rollups`]), so an evaluation costs the same at any ingest rate.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::{
    StoreError,
    rollups::{Plan, Tier},
};

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
         WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
         ORDER BY s.analyzed_at DESC, s.id DESC
         LIMIT 1
     ) a ON TRUE";

/// Analysed posts of a window as `(source, sentiment, posts)` rows; parameters `$1..$8` are the
/// first eight of [`Plan::bounds`] (rows, then minutes: there is no arrival rollup per hour).
fn arrived_sql() -> String {
    format!(
        "arrived AS (
             SELECT p.source, a.sentiment_label AS sentiment, 1::bigint AS posts
             FROM social_media_posts p {LATEST}
             WHERE p.ingested_at >= $1 AND p.ingested_at < $2
                OR p.ingested_at >= $3 AND p.ingested_at < $4
             UNION ALL
             SELECT source, sentiment, posts FROM arrival_minutes
             WHERE minute >= $5 AND minute < $6 OR minute >= $7 AND minute < $8
         )"
    )
}

/// The bounds of `[from, to)` for [`arrived_sql`].
fn window_bounds(from: DateTime<Utc>, to: DateTime<Utc>) -> [Option<DateTime<Utc>>; 8] {
    let bounds = Plan::new(Some(from), Some(to), Tier::Rows, Tier::Minutes).bounds();
    [
        bounds[0], bounds[1], bounds[2], bounds[3], bounds[4], bounds[5], bounds[6], bounds[7],
    ]
}

fn count(row: &tokio_postgres::Row, i: usize) -> u64 {
    u64::try_from(row.get::<_, i64>(i)).unwrap_or_default()
}

/// Analysed posts that arrived in `[from, to)`, and how many of them are negative.
pub async fn counts(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<WindowCounts, StoreError> {
    let bounds = window_bounds(from, to);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        bounds.iter().map(|b| b as _).collect();
    let row = client
        .query_one(
            &format!(
                "WITH {}
                 SELECT coalesce(sum(posts), 0)::bigint,
                        coalesce(sum(posts) FILTER (WHERE sentiment = 'negative'), 0)::bigint
                 FROM arrived",
                arrived_sql()
            ),
            &params,
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
    let mut numbers = Vec::new();
    let mut columns: [Vec<Option<DateTime<Utc>>>; 8] = Default::default();
    for n in 1..=windows {
        let start = end - width * i32::try_from(n).unwrap_or(i32::MAX);
        for (column, bound) in columns.iter_mut().zip(window_bounds(start, start + width)) {
            column.push(bound);
        }
        numbers.push(i64::from(n));
    }
    let [r1f, r1t, r2f, r2t, m1f, m1t, m2f, m2t] = &columns;
    let rows = client
        .query(
            "WITH w AS (
                 SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[],
                                      $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
                                      $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
                     AS w(n, r1f, r1t, r2f, r2t, m1f, m1t, m2f, m2t)
             )
             SELECT w.n,
                    (SELECT count(*) FROM social_media_posts p
                     WHERE p.ingested_at >= w.r1f AND p.ingested_at < w.r1t
                        OR p.ingested_at >= w.r2f AND p.ingested_at < w.r2t)
                  + (SELECT coalesce(sum(r.posts), 0) FROM arrival_minutes r
                     WHERE r.minute >= w.m1f AND r.minute < w.m1t
                        OR r.minute >= w.m2f AND r.minute < w.m2t)::bigint
             FROM w ORDER BY w.n DESC",
            &[&numbers, r1f, r1t, r2f, r2t, m1f, m1t, m2f, m2t],
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
    let bounds = window_bounds(from, to);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        bounds.iter().map(|b| b as _).collect();
    let rows = client
        .query(
            &format!(
                "WITH {}
                 SELECT source, sum(posts)::bigint,
                        coalesce(sum(posts) FILTER (WHERE sentiment = 'negative'), 0)::bigint
                 FROM arrived GROUP BY source HAVING sum(posts) > 0 ORDER BY 2 DESC, 1",
                arrived_sql()
            ),
            &params,
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
