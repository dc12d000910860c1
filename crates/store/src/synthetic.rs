//! Synthetic analysed posts, generated inside PostgreSQL, for benchmarks at scale.
//!
//! `pulse-bench load` fills a database with millions of posts spread evenly over a span of
//! days (by arrival and creation time), each with one analysis, in the same tables, partitions
//! and rollups the worker writes. Rows are made by `generate_series` in chunks, one transaction
//! per chunk, so a run of ten million takes minutes and can be stopped between chunks. The text
//! is drawn from a small vocabulary so that searches match a realistic share of posts.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::StoreError;

/// What to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub posts: u64,
    /// The posts arrive evenly over `days` days ending at `end`.
    pub days: u32,
    pub end: DateTime<Utc>,
    /// Posts per transaction.
    pub chunk: u64,
}

const CHUNK_TABLE_SQL: &str = "
CREATE TEMPORARY TABLE synthetic_chunk (
    post_id     TEXT,
    source      TEXT,
    author      TEXT,
    content     TEXT,
    created_at  TIMESTAMPTZ,
    ingested_at TIMESTAMPTZ,
    sentiment   TEXT,
    confidence  REAL,
    emotion     TEXT,
    terms       TEXT[]
) ON COMMIT DROP;
";

/// One chunk `$1..=$2` of `$3` posts ending at `$4` over `$5` seconds, tagged `$6`.
const CHUNK_SQL: &str = "
INSERT INTO synthetic_chunk
SELECT post_id, source, author, content, created_at, ingested_at,
       CASE opener WHEN 1 THEN 'positive' WHEN 2 THEN 'negative' ELSE 'neutral' END AS sentiment,
       confidence,
       CASE opener WHEN 1 THEN 'joy' WHEN 2 THEN (ARRAY['anger', 'sadness', 'disgust'])[1 + n % 3]
                   ELSE 'neutral' END AS emotion,
       array_remove(ARRAY[opener_term, noun, tail_term, noun || ' ' || tail_term, '#' || tag],
                    NULL) AS terms
FROM (
    SELECT n,
           $6 || '-' || n AS post_id,
           (ARRAY['twitter', 'reddit', 'news', 'forum'])[1 + (n / 7) % 4] AS source,
           'user' || (n % 50000) AS author,
           1 + n % 5 AS opener,
           format('%s %s %s #%s',
                  (ARRAY['Love the', 'Hate the', 'Meh, the', 'Just got the',
                         'Anyone else with the'])[1 + n % 5],
                  (ARRAY['battery', 'screen', 'camera', 'delivery', 'price', 'support',
                         'update', 'app'])[1 + (n / 5) % 8],
                  (ARRAY['today', 'again', 'so far', 'lol', 'honestly'])[1 + (n / 40) % 5],
                  (ARRAY['pulse', 'tech', 'phone', 'help'])[1 + n % 4]) AS content,
           -- The terms the worker would extract from that text (phrases across a stop word
           -- aside).
           (ARRAY['love', 'hate', 'meh', NULL, 'anyone'])[1 + n % 5] AS opener_term,
           (ARRAY['battery', 'screen', 'camera', 'delivery', 'price', 'support',
                  'update', 'app'])[1 + (n / 5) % 8] AS noun,
           (ARRAY['today', NULL, 'far', NULL, 'honestly'])[1 + (n / 40) % 5] AS tail_term,
           (ARRAY['pulse', 'tech', 'phone', 'help'])[1 + n % 4] AS tag,
           ($4::timestamptz - (n::float8 / $3::float8) * $5::float8 * interval '1 second')
               - (n % 90) * interval '1 second' AS created_at,
           $4::timestamptz - (n::float8 / $3::float8) * $5::float8 * interval '1 second'
               AS ingested_at,
           (0.5 + (n % 50) / 100.0)::real AS confidence
    FROM generate_series($1::bigint, $2::bigint) n
) generated;
";

/// The chunk as the rollups expect their changes (one post each).
const CHUNK_CHANGES_SQL: &str = "
chunk_changes AS (
    SELECT post_id, source, created_at, ingested_at, sentiment AS sentiment_label, emotion,
           1::bigint AS posts, confidence::float8 AS confidence,
           terms, '{}'::text[] AS entities
    FROM synthetic_chunk
)";

const STORE_CHUNK_SQL: &str = "
INSERT INTO post_keys (post_id, ingested_at) SELECT post_id, ingested_at FROM synthetic_chunk;
INSERT INTO social_media_posts (post_id, source, content, author, created_at, ingested_at, terms)
SELECT post_id, source, content, author, created_at, ingested_at, terms FROM synthetic_chunk;
INSERT INTO sentiment_analysis
    (post_id, ingested_at, model_name, sentiment_label, confidence_score,
     emotion, emotion_score, emotion_model, analyzed_at)
SELECT post_id, ingested_at, 'synthetic@1', sentiment, confidence,
       emotion, confidence, 'synthetic@1', ingested_at
FROM synthetic_chunk;
";

/// Loads `spec.posts` posts with ids `<tag>-<n>`; `progress` gets the posts loaded so far after
/// each chunk. Returns the posts loaded.
pub async fn load(
    client: &mut Client,
    spec: LoadSpec,
    tag: &str,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let span = TimeDelta::days(i64::from(spec.days));
    let first_day = (spec.end - span).date_naive();
    let last_day = spec.end.date_naive();
    client
        .execute(
            "SELECT pulse_create_week_partitions($1, $2)",
            &[&first_day, &last_day],
        )
        .await?;
    let total = i64::try_from(spec.posts).unwrap_or(i64::MAX);
    let chunk = i64::try_from(spec.chunk.max(1)).unwrap_or(i64::MAX);
    let seconds = span.num_seconds() as f64;
    let total_f = total as f64;
    let mut start = 1_i64;
    while start <= total {
        let last = (start + chunk - 1).min(total);
        let tx = client.transaction().await?;
        tx.batch_execute(CHUNK_TABLE_SQL).await?;
        tx.execute(
            CHUNK_SQL,
            &[&start, &last, &total_f, &spec.end, &seconds, &tag],
        )
        .await?;
        tx.batch_execute(STORE_CHUNK_SQL).await?;
        tx.batch_execute(&format!(
            "WITH {CHUNK_CHANGES_SQL}, {} SELECT 1",
            crate::rollups::upserts("chunk_changes")
        ))
        .await?;
        tx.commit().await?;
        progress(u64::try_from(last).unwrap_or_default());
        start = last + 1;
    }
    client.batch_execute("ANALYZE").await?;
    Ok(spec.posts)
}

/// A term of the synthetic vocabulary and the posts per minute of each sentiment that mention
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct TermRate {
    pub kind: crate::terms::TermKind,
    pub term: String,
    /// Posts per minute: positive, neutral, negative.
    pub per_minute: [f64; 3],
}

/// What [`load_term_rollups`] writes.
#[derive(Debug, Clone)]
pub struct TermLoadSpec {
    /// The minutes of `[end - hours, end)` (whole minutes) get rows.
    pub end: DateTime<Utc>,
    pub hours: u32,
    /// Posts per minute of each sentiment, for the sentiment rollups the shares are taken of.
    pub posts_per_minute: [f64; 3],
    pub vocabulary: Vec<TermRate>,
}

/// Writes the term rollups (and the sentiment rollups) that a stream of posts with
/// `spec.vocabulary` would leave, minute by minute, without the posts themselves: what the
/// insights read, at the size a day of a fast mesh leaves, in seconds instead of hours. Counts
/// wobble by up to 10 % from minute to minute, as sampling does. Hour rows are the sums of
/// their minutes. Returns the term rows written (minutes and hours).
pub async fn load_term_rollups(
    client: &mut Client,
    spec: &TermLoadSpec,
) -> Result<u64, StoreError> {
    let end = spec
        .end
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(spec.end);
    let start = end - TimeDelta::hours(i64::from(spec.hours));
    let kinds: Vec<&str> = spec
        .vocabulary
        .iter()
        .map(|t| match t.kind {
            crate::terms::TermKind::Term => "t",
            crate::terms::TermKind::Entity => "e",
        })
        .collect();
    let terms: Vec<&str> = spec.vocabulary.iter().map(|t| t.term.as_str()).collect();
    let rate = |i: usize| -> Vec<f64> { spec.vocabulary.iter().map(|t| t.per_minute[i]).collect() };
    let (positive, neutral, negative) = (rate(0), rate(1), rate(2));
    let posts: Vec<f64> = spec.posts_per_minute.to_vec();
    let tx = client.transaction().await?;
    let minutes = tx
        .execute(
            "INSERT INTO term_minutes (minute, sentiment, kind, term, posts)
             SELECT m, s.sentiment, v.kind, v.term,
                    round(s.rate * (1 + 0.1 * sin(extract(epoch FROM m) / 600.0 + v.n)))::bigint
             FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 minute',
                                  interval '1 minute') m
             CROSS JOIN unnest($3::char[], $4::text[], $5::float8[], $6::float8[], $7::float8[])
                 WITH ORDINALITY AS v(kind, term, positive, neutral, negative, n)
             CROSS JOIN LATERAL (VALUES ('positive', v.positive), ('neutral', v.neutral),
                                        ('negative', v.negative)) s(sentiment, rate)
             WHERE round(s.rate * (1 + 0.1 * sin(extract(epoch FROM m) / 600.0 + v.n))) > 0
             ON CONFLICT (minute, sentiment, kind, term) DO UPDATE
                 SET posts = term_minutes.posts + excluded.posts",
            &[&start, &end, &kinds, &terms, &positive, &neutral, &negative],
        )
        .await?;
    let hours = tx
        .execute(
            "INSERT INTO term_hours (hour, sentiment, kind, term, posts)
             SELECT date_trunc('hour', minute, 'UTC'), sentiment, kind, term, sum(posts)
             FROM term_minutes WHERE minute >= $1 AND minute < $2
             GROUP BY 1, 2, 3, 4
             ON CONFLICT (hour, sentiment, kind, term) DO UPDATE SET posts = excluded.posts",
            &[&start, &end],
        )
        .await?;
    tx.execute(
        "INSERT INTO sentiment_minutes (minute, source, sentiment, emotion, posts, confidence_sum)
         SELECT m, 'synthetic', s.sentiment, '', round(s.rate)::bigint, 0.8 * round(s.rate)
         FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 minute',
                              interval '1 minute') m
         CROSS JOIN unnest(ARRAY['positive', 'neutral', 'negative'], $3::float8[]) s(sentiment, rate)
         ON CONFLICT (minute, source, sentiment, emotion) DO NOTHING",
        &[&start, &end, &posts],
    )
    .await?;
    tx.execute(
        "INSERT INTO sentiment_hours (hour, source, sentiment, emotion, posts, confidence_sum)
         SELECT date_trunc('hour', minute, 'UTC'), source, sentiment, emotion, sum(posts),
                sum(confidence_sum)
         FROM sentiment_minutes WHERE minute >= $1 AND minute < $2 AND source = 'synthetic'
         GROUP BY 1, 2, 3, 4
         ON CONFLICT (hour, source, sentiment, emotion) DO UPDATE SET posts = excluded.posts,
             confidence_sum = excluded.confidence_sum",
        &[&start, &end],
    )
    .await?;
    tx.commit().await?;
    client
        .batch_execute("ANALYZE term_minutes, term_hours, sentiment_minutes, sentiment_hours")
        .await?;
    Ok(minutes + hours)
}
