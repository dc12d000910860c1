//! Aggregations over analysed posts: the distribution and time buckets.
//!
//! Each reads [`COUNTED_SQL`]: the range, widened to whole minutes, from the rollups (hours where
//! the bucket allows, minutes at the ends; see [`crate::rollups`]). Filters the rollups do not
//! keep (text search, author) read the posts of the exact range instead, bounded by the caller's
//! statement timeout.

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, types::ToSql};

use crate::{
    PostQuery, StoreError,
    query::{FILTER_SQL, FROM_SQL, FilterParams},
    rollups::Plan,
};

/// One row per counted post or rollup row of the range: `at`, `source`, `sentiment`, `emotion`
/// ('' for none), `posts` and `confidence_sum`. Parameters: `$1..$7` of [`FILTER_SQL`], then the
/// ten bounds of [`Plan::bounds`].
const COUNTED_SQL: &str = "counted AS (
    SELECT p.created_at AS at, p.source, a.sentiment_label AS sentiment,
           coalesce(a.emotion, '') AS emotion, 1::bigint AS posts,
           a.confidence_score::float8 AS confidence_sum
    FROM {FROM} WHERE {FILTER}
      AND (($8::timestamptz IS NULL OR p.created_at >= $8)
           AND ($9::timestamptz IS NULL OR p.created_at < $9)
        OR ($10::timestamptz IS NULL OR p.created_at >= $10)
           AND ($11::timestamptz IS NULL OR p.created_at < $11))
    UNION ALL
    SELECT minute, source, sentiment, emotion, posts, confidence_sum FROM sentiment_minutes
    WHERE {ROLLUP_FILTER}
      AND (($12::timestamptz IS NULL OR minute >= $12)
           AND ($13::timestamptz IS NULL OR minute < $13)
        OR ($14::timestamptz IS NULL OR minute >= $14)
           AND ($15::timestamptz IS NULL OR minute < $15))
    UNION ALL
    SELECT hour, source, sentiment, emotion, posts, confidence_sum FROM sentiment_hours
    WHERE {ROLLUP_FILTER}
      AND ($16::timestamptz IS NULL OR hour >= $16) AND ($17::timestamptz IS NULL OR hour < $17)
)";

/// The filters a rollup row can answer, for the parameters of [`FILTER_SQL`].
const ROLLUP_FILTER_SQL: &str = "($1::text IS NULL OR source = $1)
      AND ($2::text IS NULL OR sentiment = $2)
      AND ($3::text IS NULL OR emotion = $3)";

fn counted_sql() -> String {
    COUNTED_SQL
        .replace("{FROM}", FROM_SQL)
        .replace("{FILTER}", FILTER_SQL)
        .replace("{ROLLUP_FILTER}", ROLLUP_FILTER_SQL)
}

/// The filter's values and its range's plan, as the parameters of [`COUNTED_SQL`].
struct Counted {
    filter: FilterParams,
    bounds: [Option<DateTime<Utc>>; 10],
}

impl Counted {
    /// `hours`: whether the hour rollup may serve the range (not for minute buckets).
    fn new(query: &PostQuery, hours: bool) -> Self {
        let plan = if query.fits_rollups() {
            Plan::in_whole_minutes(query.from, query.to, hours)
        } else {
            Plan::rows_only(query.from, query.to)
        };
        Self::with_plan(query, plan)
    }

    fn with_plan(query: &PostQuery, plan: Plan) -> Self {
        Counted {
            filter: FilterParams::new(query),
            bounds: plan.bounds(),
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.filter.as_params();
        params.extend(self.bounds.iter().map(|b| b as &(dyn ToSql + Sync)));
        params
    }
}

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
    let counted = Counted::new(query, true);
    let rows = client
        .query(
            &format!(
                "WITH {}
                 SELECT 's' AS kind, sentiment AS label, sum(posts)::bigint FROM counted
                 GROUP BY sentiment HAVING sum(posts) > 0
                 UNION ALL
                 SELECT 'e', emotion, sum(posts)::bigint FROM counted
                 WHERE emotion <> '' GROUP BY emotion HAVING sum(posts) > 0
                 ORDER BY 1, 3 DESC, 2",
                counted_sql()
            ),
            &counted.params(),
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

/// How many analysed posts match `query`, for its exact range: rollups for the whole minutes,
/// posts for the seconds at either end. Only for queries that [`PostQuery::fits_rollups`].
pub async fn count(client: &Client, query: &PostQuery) -> Result<u64, StoreError> {
    let counted = Counted::with_plan(query, Plan::new(query.from, query.to, true));
    let row = client
        .query_one(
            &format!(
                "WITH {} SELECT coalesce(sum(posts), 0)::bigint FROM counted",
                counted_sql()
            ),
            &counted.params(),
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
}

/// Sentiment distribution per source.
pub async fn distribution_by_source(
    client: &Client,
    query: &PostQuery,
) -> Result<Vec<(String, Vec<(String, u64)>)>, StoreError> {
    let counted = Counted::new(query, true);
    let rows = client
        .query(
            &format!(
                "WITH {}
                 SELECT source, sentiment, sum(posts)::bigint FROM counted
                 GROUP BY 1, 2 HAVING sum(posts) > 0 ORDER BY 1, 3 DESC, 2",
                counted_sql()
            ),
            &counted.params(),
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
    let counted = Counted::new(&bounded, bucket != Bucket::Minute);
    let unit = bucket.sql_unit();
    let mut params = counted.params();
    params.push(&unit);
    let rows = client
        .query(
            &format!(
                "WITH buckets AS (
                     SELECT generate_series(
                         date_trunc($18, $6::timestamptz, 'UTC'),
                         date_trunc($18, $7::timestamptz - interval '1 microsecond', 'UTC'),
                         ('1 ' || $18)::interval) AS start
                 ),
                 {},
                 per_bucket AS (
                     SELECT date_trunc($18, at, 'UTC') AS start,
                            sum(posts)::bigint AS total,
                            coalesce(sum(posts) FILTER (WHERE sentiment = 'positive'), 0)::bigint
                                AS positive,
                            coalesce(sum(posts) FILTER (WHERE sentiment = 'neutral'), 0)::bigint
                                AS neutral,
                            coalesce(sum(posts) FILTER (WHERE sentiment = 'negative'), 0)::bigint
                                AS negative,
                            (sum(confidence_sum) / nullif(sum(posts), 0))::float8 AS confidence
                     FROM counted
                     GROUP BY 1
                 )
                 SELECT b.start, coalesce(c.total, 0), coalesce(c.positive, 0),
                        coalesce(c.neutral, 0), coalesce(c.negative, 0), coalesce(c.confidence, 0)
                 FROM buckets b LEFT JOIN per_bucket c ON c.start = b.start
                 ORDER BY b.start",
                counted_sql()
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
