//! Aggregations over analysed posts: the distribution and time buckets.
//!
//! Each reads [`counted`] over a range cut by [`crate::rollups::Plan`]: a distribution counts
//! its range widened to whole minutes (days, hours and minutes from the rollups), a chart counts
//! whole buckets from the rollup of its bucket width, and a `ListPosts` total counts the exact
//! range. Filters the rollups do not keep (text search, author) read the posts of the exact
//! range instead, bounded by the caller's statement timeout.

use chrono::{DateTime, Utc};
use tokio_postgres::{Row, types::ToSql};

use crate::{
    PostQuery, StoreError,
    query::{Binds, FROM_SQL, filter_sql, rollup_filter_sql},
    rollups::{Plan, Segment, Tier},
};

/// A pooled connection, which keeps prepared statements between uses.
type Client = crate::pool::Client;

/// A statement whose parameters are numbered as they are bound, so that it holds only the
/// parts a range needs.
#[derive(Default)]
struct Statement {
    binds: Binds,
    /// Whether the statement reads the posts (not only rollups).
    reads_posts: bool,
}

impl Statement {
    /// Binds `value`; returns its placeholder (`$n`).
    fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.binds.bind(value)
    }

    /// Runs `sql` with the bound values. A statement over the rollups alone is prepared once
    /// per connection (its shapes are few: which segments a range uses and which filters are
    /// set), and PostgreSQL soon reuses one plan for it, which spares the parsing and planning
    /// of every dashboard refresh. One that reads the posts is planned for its values each
    /// time, as a text search must be (see `posts::select`).
    async fn query(&self, client: &Client, sql: &str) -> Result<Vec<Row>, StoreError> {
        if self.reads_posts {
            return Ok(client.query(sql, &self.binds.params()).await?);
        }
        let prepared = client.prepare_cached(sql).await?;
        Ok(client.query(&prepared, &self.binds.params()).await?)
    }
}

/// `column` inside one of `segments`, the bounds bound to `statement`; `None` when no segment
/// holds anything.
fn in_segments(column: &str, segments: [Segment; 2], statement: &mut Statement) -> Option<String> {
    let parts: Vec<String> = segments
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut bounds = Vec::new();
            if let Some(from) = s.from {
                bounds.push(format!("{column} >= {}", statement.bind(from)));
            }
            if let Some(to) = s.to {
                bounds.push(format!("{column} < {}", statement.bind(to)));
            }
            if bounds.is_empty() {
                "TRUE".to_owned()
            } else {
                format!("({})", bounds.join(" AND "))
            }
        })
        .collect();
    (!parts.is_empty()).then(|| format!("({})", parts.join(" OR ")))
}

/// The `counted` CTE of `query` and the statement holding its values: one row per counted post
/// or rollup row, with `at`, `source`, `sentiment`, `emotion` ('' for none), `posts` and
/// `confidence_sum`. The range is cut from `finest` to `coarsest` when the rollups can count
/// the query ([`PostQuery::fits_rollups`]); otherwise all of it is read from the posts, exactly.
///
/// Only the tables the plan uses appear: a statement over the partitioned posts costs
/// milliseconds to plan (every partition is considered), one over a rollup microseconds. When
/// posts are read, the filter's values are bound first, then the rollups' (source, sentiment
/// and emotion, those the query sets).
fn counted(query: &PostQuery, finest: Tier, coarsest: Tier) -> (Statement, String) {
    let plan = if query.fits_rollups() {
        Plan::new(query.from, query.to, finest, coarsest)
    } else {
        Plan::new(query.from, query.to, Tier::Rows, Tier::Rows)
    };
    let mut owned = Statement::default();
    let statement = &mut owned;
    let mut branches = Vec::new();
    let reads_posts = plan.tier(Tier::Rows).iter().any(|s| !s.is_empty());
    statement.reads_posts = reads_posts;
    if reads_posts {
        let filter = filter_sql(query, &mut statement.binds);
        if let Some(range) = in_segments("p.created_at", plan.tier(Tier::Rows), statement) {
            branches.push(format!(
                "SELECT p.created_at AS at, p.source, a.sentiment_label AS sentiment,
                        coalesce(a.emotion, '') AS emotion, 1::bigint AS posts,
                        a.confidence_score::float8 AS confidence_sum
                 FROM {FROM_SQL} WHERE {filter} AND {range}"
            ));
        }
    }
    // Bound once, by the first rollup that counts part of the range: a value bound and not
    // used would leave its parameter without a type.
    let mut rollup_filter: Option<String> = None;
    for (tier, table, column) in [
        (Tier::Minutes, "sentiment_minutes", "minute"),
        (Tier::Hours, "sentiment_hours", "hour"),
        (Tier::Days, "sentiment_days", "day"),
    ] {
        if let Some(range) = in_segments(column, plan.tier(tier), statement) {
            let rollup_filter =
                rollup_filter.get_or_insert_with(|| rollup_filter_sql(query, &mut statement.binds));
            branches.push(format!(
                "SELECT {column} AS at, source, sentiment, emotion, posts, confidence_sum FROM {table}
                 WHERE {rollup_filter} AND {range}"
            ));
        }
    }
    if branches.is_empty() {
        // An empty range: the right columns, no rows.
        branches.push(
            "SELECT minute AS at, source, sentiment, emotion, posts, confidence_sum
             FROM sentiment_minutes WHERE FALSE"
                .to_owned(),
        );
    }
    let sql = format!("counted AS ({})", branches.join(" UNION ALL "));
    (owned, sql)
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
    let (statement, counted) = counted(query, Tier::Minutes, Tier::Days);
    let rows = statement
        .query(
            client,
            &format!(
                "WITH {counted}
                 SELECT 's' AS kind, sentiment AS label, sum(posts)::bigint FROM counted
                 GROUP BY sentiment HAVING sum(posts) > 0
                 UNION ALL
                 SELECT 'e', emotion, sum(posts)::bigint FROM counted
                 WHERE emotion <> '' GROUP BY emotion HAVING sum(posts) > 0
                 ORDER BY 1, 3 DESC, 2"
            ),
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
    let (statement, counted) = counted(query, Tier::Rows, Tier::Days);
    let rows = statement
        .query(
            client,
            &format!("WITH {counted} SELECT coalesce(sum(posts), 0)::bigint FROM counted"),
        )
        .await?;
    let total: i64 = rows.first().map_or(0, |row| row.get(0));
    Ok(u64::try_from(total).unwrap_or_default())
}

/// Sentiment distribution per source.
pub async fn distribution_by_source(
    client: &Client,
    query: &PostQuery,
) -> Result<Vec<(String, Vec<(String, u64)>)>, StoreError> {
    let (statement, counted) = counted(query, Tier::Minutes, Tier::Days);
    let rows = statement
        .query(
            client,
            &format!(
                "WITH {counted}
                 SELECT source, sentiment, sum(posts)::bigint FROM counted
                 GROUP BY 1, 2 HAVING sum(posts) > 0 ORDER BY 1, 3 DESC, 2"
            ),
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
    let (mut statement, counted) = counted(&bounded, tier, tier);
    let unit = statement.bind(bucket.sql_unit());
    let (first, last) = (statement.bind(from), statement.bind(to));
    let rows = statement
        .query(
            client,
            &format!(
                "WITH buckets AS (
                     SELECT generate_series(
                         date_trunc({unit}, {first}::timestamptz, 'UTC'),
                         date_trunc({unit}, {last}::timestamptz - interval '1 microsecond', 'UTC'),
                         ('1 ' || {unit})::interval) AS start
                 ),
                 {counted},
                 per_bucket AS (
                     SELECT date_trunc({unit}, at, 'UTC') AS start,
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
                 ORDER BY b.start"
            ),
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
