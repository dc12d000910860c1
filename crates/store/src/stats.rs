//! Aggregations over analysed posts: the distribution and time buckets.
//!
//! Each reads [`counted_sql`] over a range cut by [`crate::rollups::Plan`]: a distribution counts
//! its range widened to whole minutes (days, hours and minutes from the rollups), a chart counts
//! whole buckets from the rollup of its bucket width, and a `ListPosts` total counts the exact
//! range. Filters the rollups do not keep (text search, author) read the posts of the exact
//! range instead, bounded by the caller's statement timeout.

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, types::ToSql};

use crate::{
    PostQuery, StoreError,
    query::{FILTER_SQL, FROM_SQL, FilterParams},
    rollups::{Plan, Tier},
};

/// The first parameter of the bounds of [`Plan::bounds`], after the seven of [`FILTER_SQL`].
const FIRST_BOUND: usize = 8;

/// `column` in either of the two segments whose bounds are parameters `$first..$first + 3`.
fn in_segments(column: &str, first: usize) -> String {
    let [a, b, c, d] = [first, first + 1, first + 2, first + 3];
    format!(
        "(((${a}::timestamptz IS NULL OR {column} >= ${a})
           AND (${b}::timestamptz IS NULL OR {column} < ${b}))
       OR ((${c}::timestamptz IS NULL OR {column} >= ${c})
           AND (${d}::timestamptz IS NULL OR {column} < ${d})))"
    )
}

/// One row per counted post or rollup row of the range: `at`, `source`, `sentiment`, `emotion`
/// ('' for none), `posts` and `confidence_sum`. Parameters: `$1..$7` of [`FILTER_SQL`], then the
/// sixteen bounds of [`Plan::bounds`] (posts, minutes, hours, days).
fn counted_sql() -> String {
    let rollup = |table: &str, column: &str, first: usize| {
        format!(
            "SELECT {column}, source, sentiment, emotion, posts, confidence_sum FROM {table}
             WHERE {ROLLUP_FILTER_SQL} AND {}",
            in_segments(column, first)
        )
    };
    format!(
        "counted AS (
             SELECT p.created_at AS at, p.source, a.sentiment_label AS sentiment,
                    coalesce(a.emotion, '') AS emotion, 1::bigint AS posts,
                    a.confidence_score::float8 AS confidence_sum
             FROM {FROM_SQL} WHERE {FILTER_SQL} AND {}
             UNION ALL {}
             UNION ALL {}
             UNION ALL {}
         )",
        in_segments("p.created_at", FIRST_BOUND),
        rollup("sentiment_minutes", "minute", FIRST_BOUND + 4),
        rollup("sentiment_hours", "hour", FIRST_BOUND + 8),
        rollup("sentiment_days", "day", FIRST_BOUND + 12),
    )
}

/// The filters a rollup row can answer, for the parameters of [`FILTER_SQL`].
const ROLLUP_FILTER_SQL: &str = "($1::text IS NULL OR source = $1)
      AND ($2::text IS NULL OR sentiment = $2)
      AND ($3::text IS NULL OR emotion = $3)";

/// The filter's values and its range's plan, as the parameters of [`counted_sql`].
struct Counted {
    filter: FilterParams,
    bounds: [Option<DateTime<Utc>>; 16],
}

impl Counted {
    /// The range of `query` cut from `finest` to `coarsest` when the rollups can count the
    /// query; otherwise all of it from the posts, exactly.
    fn new(query: &PostQuery, finest: Tier, coarsest: Tier) -> Self {
        let plan = if query.fits_rollups() {
            Plan::new(query.from, query.to, finest, coarsest)
        } else {
            Plan::new(query.from, query.to, Tier::Rows, Tier::Rows)
        };
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
    let counted = Counted::new(query, Tier::Minutes, Tier::Days);
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
    let counted = Counted::new(query, Tier::Rows, Tier::Days);
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
    let counted = Counted::new(query, Tier::Minutes, Tier::Days);
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

    fn tier(self) -> Tier {
        match self {
            Bucket::Minute => Tier::Minutes,
            Bucket::Hour => Tier::Hours,
            Bucket::Day => Tier::Days,
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
    // Whole buckets: a chart's bars each count their whole minute, hour or day.
    let tier = bucket.tier();
    let counted = Counted::new(&bounded, tier, tier);
    let unit = bucket.sql_unit();
    let mut params = counted.params();
    params.push(&unit);
    let rows = client
        .query(
            &format!(
                "WITH buckets AS (
                     SELECT generate_series(
                         date_trunc($24, $6::timestamptz, 'UTC'),
                         date_trunc($24, $7::timestamptz - interval '1 microsecond', 'UTC'),
                         ('1 ' || $24)::interval) AS start
                 ),
                 {},
                 per_bucket AS (
                     SELECT date_trunc($24, at, 'UTC') AS start,
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
