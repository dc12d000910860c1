//! Aggregations over analysed posts: the distribution and time buckets.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::{
    PostQuery, StoreError,
    query::{FILTER_SQL, FROM_SQL, FilterParams},
};

/// Posts per label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    pub total: u64,
    /// (label, count), most frequent first.
    pub sentiment: Vec<(String, u64)>,
    /// (label, count), most frequent first; posts without an emotion are not counted.
    pub emotion: Vec<(String, u64)>,
}

/// Sentiment and emotion counts over the posts `query` selects.
pub async fn distribution(client: &Client, query: &PostQuery) -> Result<Distribution, StoreError> {
    let filter = FilterParams::new(query);
    let rows = client
        .query(
            &format!(
                "SELECT 's' AS kind, a.sentiment_label AS label, count(*) FROM {FROM_SQL}
                 WHERE {FILTER_SQL} GROUP BY a.sentiment_label
                 UNION ALL
                 SELECT 'e', a.emotion, count(*) FROM {FROM_SQL}
                 WHERE {FILTER_SQL} AND a.emotion IS NOT NULL GROUP BY a.emotion
                 ORDER BY 1, 3 DESC, 2"
            ),
            &filter.as_params(),
        )
        .await?;
    let mut out = Distribution::default();
    for row in rows {
        let kind: &str = row.get(0);
        let label: String = row.get(1);
        let count = u64::try_from(row.get::<_, i64>(2)).unwrap_or_default();
        if kind == "s" {
            out.total += count;
            out.sentiment.push((label, count));
        } else {
            out.emotion.push((label, count));
        }
    }
    Ok(out)
}

/// Sentiment distribution per source.
pub async fn distribution_by_source(
    client: &Client,
    query: &PostQuery,
) -> Result<Vec<(String, Vec<(String, u64)>)>, StoreError> {
    let filter = FilterParams::new(query);
    let rows = client
        .query(
            &format!(
                "SELECT p.source, a.sentiment_label, count(*) FROM {FROM_SQL}
                 WHERE {FILTER_SQL} GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
            ),
            &filter.as_params(),
        )
        .await?;
    let mut out: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    for row in rows {
        let source: String = row.get(0);
        let label: String = row.get(1);
        let count = u64::try_from(row.get::<_, i64>(2)).unwrap_or_default();
        match out.last_mut() {
            Some((last, labels)) if *last == source => labels.push((label, count)),
            _ => out.push((source, vec![(label, count)])),
        }
    }
    Ok(out)
}

/// Width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    fn sql_unit(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn duration(self) -> chrono::Duration {
        match self {
            Bucket::Minute => chrono::Duration::minutes(1),
            Bucket::Hour => chrono::Duration::hours(1),
            Bucket::Day => chrono::Duration::days(1),
        }
    }
}

/// One time bucket of sentiment counts.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketCounts {
    pub start: DateTime<Utc>,
    pub total: u64,
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    /// Mean sentiment confidence; 0 for an empty bucket.
    pub average_confidence: f64,
}

/// Sentiment counts per bucket from `from` to `to` (UTC-aligned), empty buckets included.
pub async fn aggregate(
    client: &Client,
    query: &PostQuery,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
) -> Result<Vec<BucketCounts>, StoreError> {
    let bounded = PostQuery {
        from: Some(from),
        to: Some(to),
        ..query.clone()
    };
    let filter = FilterParams::new(&bounded);
    let unit = bucket.sql_unit();
    let mut params = filter.as_params();
    params.push(&unit);
    let rows = client
        .query(
            &format!(
                "WITH buckets AS (
                     SELECT generate_series(
                         date_trunc($8, $6::timestamptz, 'UTC'),
                         date_trunc($8, $7::timestamptz - interval '1 microsecond', 'UTC'),
                         ('1 ' || $8)::interval) AS start
                 ),
                 counted AS (
                     SELECT date_trunc($8, p.created_at, 'UTC') AS start,
                            count(*) AS total,
                            count(*) FILTER (WHERE a.sentiment_label = 'positive') AS positive,
                            count(*) FILTER (WHERE a.sentiment_label = 'neutral') AS neutral,
                            count(*) FILTER (WHERE a.sentiment_label = 'negative') AS negative,
                            avg(a.confidence_score)::float8 AS confidence
                     FROM {FROM_SQL} WHERE {FILTER_SQL}
                     GROUP BY 1
                 )
                 SELECT b.start, coalesce(c.total, 0), coalesce(c.positive, 0),
                        coalesce(c.neutral, 0), coalesce(c.negative, 0), coalesce(c.confidence, 0)
                 FROM buckets b LEFT JOIN counted c ON c.start = b.start
                 ORDER BY b.start"
            ),
            &params,
        )
        .await?;
    let count = |row: &tokio_postgres::Row, i: usize| {
        u64::try_from(row.get::<_, i64>(i)).unwrap_or_default()
    };
    Ok(rows
        .iter()
        .map(|row| BucketCounts {
            start: row.get(0),
            total: count(row, 1),
            positive: count(row, 2),
            neutral: count(row, 3),
            negative: count(row, 4),
            average_confidence: row.get(5),
        })
        .collect())
}
