//! Writing analysed posts and reading them back.

use chrono::{DateTime, Utc};
use pulse_domain::{Analysis, Post};
use tokio_postgres::{Client, Row};
use tracing::Instrument;

/// A pooled connection, which keeps prepared statements between uses.
type Pooled = crate::pool::Client;

use crate::{
    PostQuery, StoreError,
    query::{Binds, FROM_SQL, filter_sql},
};

/// Inserts the posts whose keys are new, at the transaction's time, and returns their ids.
///
/// A post's terms and entities come as one text each, joined by newlines (which no term
/// contains): PostgreSQL arrays of arrays must be rectangular, and posts mention different
/// numbers of terms.
///
/// `post_keys` holds each stored post id once (a partitioned table cannot hold `post_id` unique
/// across its partitions): a key that exists means the post is stored, whatever its day.
const INSERT_POSTS: &str = "
WITH incoming AS (
    SELECT DISTINCT ON (post_id) *
    FROM UNNEST($1::varchar[], $2::varchar[], $3::text[], $4::varchar[], $5::timestamptz[],
                $6::text[], $7::text[])
        AS t(post_id, source, content, author, created_at, terms, entities)
),
keys AS (
    INSERT INTO post_keys (post_id, ingested_at)
    SELECT post_id, now() FROM incoming
    ON CONFLICT (post_id) DO NOTHING
    RETURNING post_id, ingested_at
)
INSERT INTO social_media_posts
    (post_id, source, content, author, created_at, ingested_at, terms, entities)
SELECT i.post_id, i.source, i.content, i.author, i.created_at, k.ingested_at,
       string_to_array(i.terms, E'\n'), string_to_array(i.entities, E'\n')
FROM incoming i JOIN keys k USING (post_id)
RETURNING post_id";

/// Inserts analyses and moves the rollup counts of their posts, in one statement.
///
/// `previous` reads the table as it was before the statement (a data-modifying CTE's rows are
/// visible only through RETURNING), so it is each post's counted analysis so far. A post is
/// counted under its newest analysis (analyzed_at, then id, as the reads order them): a newly
/// inserted one that is at least as recent takes the post's count from the previous one. A
/// redelivered analysis conflicts, inserts nothing and so counts nothing. Upserts go in key order
/// so that concurrent writers lock rollup rows in the same order and cannot deadlock.
const INSERT_ANALYSES_TEMPLATE: &str = "
WITH given AS (
    SELECT * FROM UNNEST($1::varchar[], $2::varchar[], $3::varchar[], $4::real[],
                         $5::varchar[], $6::real[], $7::varchar[], $8::timestamptz[])
        AS t(post_id, model_name, sentiment_label, confidence_score,
             emotion, emotion_score, emotion_model, analyzed_at)
),
incoming AS (
    SELECT g.*, k.ingested_at FROM given g JOIN post_keys k USING (post_id)
),
previous AS (
    SELECT DISTINCT ON (s.post_id)
           s.post_id, s.sentiment_label, s.emotion, s.confidence_score, s.analyzed_at
    FROM sentiment_analysis s
    WHERE (s.post_id, s.ingested_at) IN (SELECT post_id, ingested_at FROM incoming)
    ORDER BY s.post_id, s.analyzed_at DESC, s.id DESC
),
inserted AS (
    INSERT INTO sentiment_analysis
        (post_id, ingested_at, model_name, sentiment_label, confidence_score,
         emotion, emotion_score, emotion_model, analyzed_at)
    SELECT post_id, ingested_at, model_name, sentiment_label, confidence_score,
           emotion, emotion_score, emotion_model, analyzed_at
    FROM incoming
    ON CONFLICT (post_id, model_name, ingested_at) DO NOTHING
    RETURNING id, post_id, ingested_at, sentiment_label, emotion, confidence_score, analyzed_at
),
newest AS (
    SELECT DISTINCT ON (post_id) * FROM inserted ORDER BY post_id, analyzed_at DESC, id DESC
),
changes AS (
    SELECT n.post_id, n.ingested_at, n.sentiment_label, n.emotion, n.confidence_score, 1 AS posts
    FROM newest n LEFT JOIN previous p USING (post_id)
    WHERE p.post_id IS NULL OR n.analyzed_at >= p.analyzed_at
    UNION ALL
    SELECT p.post_id, n.ingested_at, p.sentiment_label, p.emotion, p.confidence_score, -1
    FROM newest n JOIN previous p USING (post_id)
    WHERE n.analyzed_at >= p.analyzed_at
),
located AS (
    SELECT c.post_id, c.sentiment_label, coalesce(c.emotion, '') AS emotion,
           c.posts::bigint AS posts, c.posts * c.confidence_score::float8 AS confidence,
           sp.source, sp.created_at, sp.ingested_at, sp.terms, sp.entities
    FROM changes c
    JOIN social_media_posts sp ON sp.post_id = c.post_id AND sp.ingested_at = c.ingested_at
),
{ROLL_UP}
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM given) - (SELECT count(*) FROM incoming)";

/// [`INSERT_ANALYSES_TEMPLATE`] with the rollup upserts of `located`.
static INSERT_ANALYSES_AND_ROLL_UP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    INSERT_ANALYSES_TEMPLATE.replace("{ROLL_UP}", &crate::rollups::upserts("located"))
});

/// What one batch write changed; rows that already existed are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub posts_inserted: u64,
    pub analyses_inserted: u64,
}

/// Stores posts and their analyses in one transaction.
///
/// Idempotent: a post already stored (same `post_id`) or an analysis already stored (same
/// `post_id` and `model_name`) is left as it is, so redelivered stream entries never create
/// duplicates. Rows go in as arrays through `UNNEST`: two statements per batch, whatever its size
/// (a third, locking the posts, when a batch analyses posts stored earlier). The rollups move in
/// the same transaction (see [`INSERT_ANALYSES_TEMPLATE`]), so they count what is stored,
/// exactly once.
///
/// The transaction is traced as one client span, a child of the caller's current span, named
/// for the tables it writes (`INSERT social_media_posts sentiment_analysis`) with the `db.*`
/// attributes of the OpenTelemetry conventions; its status is ERROR when the write fails.
pub async fn insert_analysed(
    client: &mut Client,
    posts: &[Post],
    analyses: &[Analysis],
) -> Result<WriteOutcome, StoreError> {
    insert_analysed_mentioning(client, posts, &[], analyses).await
}

/// What a post mentions, stored with it for the insights: its terms (words, two-word phrases,
/// `@mentions`) and its entities (the catalogue entities it names, its `#hashtags`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub terms: Vec<String>,
    pub entities: Vec<String>,
}

/// [`insert_analysed`], with what each post mentions: `mentions[i]` belongs to `posts[i]`;
/// posts past the end of `mentions` mention nothing (an empty slice turns the term rollups
/// off for the batch). Terms and entities are counted in the term rollups like the sentiment
/// rollups count posts: once per post, under its latest analysis.
pub async fn insert_analysed_mentioning(
    client: &mut Client,
    posts: &[Post],
    mentions: &[Mentions],
    analyses: &[Analysis],
) -> Result<WriteOutcome, StoreError> {
    let span = tracing::info_span!(
        "db.insert_analysed",
        otel.name = "INSERT social_media_posts sentiment_analysis",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        db.system.name = "postgresql",
        db.operation.name = "INSERT",
        db.collection.name = "social_media_posts,sentiment_analysis",
        db.operation.batch.size = posts.len(),
    );
    let written = write_analysed(client, posts, mentions, analyses)
        .instrument(span.clone())
        .await;
    if written.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    written
}

/// One text per post of the lists that `pick` takes from its mentions, joined by newlines
/// (see [`INSERT_POSTS`]).
fn joined(posts: &[Post], mentions: &[Mentions], pick: fn(&Mentions) -> &[String]) -> Vec<String> {
    (0..posts.len())
        .map(|i| {
            mentions
                .get(i)
                .map(|m| {
                    // Each once, so a post counts once per term whatever the caller passed.
                    let kept: std::collections::BTreeSet<&str> = pick(m)
                        .iter()
                        .map(String::as_str)
                        .filter(|t| !t.is_empty() && !t.contains('\n'))
                        .collect();
                    kept.into_iter().collect::<Vec<_>>().join("\n")
                })
                .unwrap_or_default()
        })
        .collect()
}

async fn write_analysed(
    client: &mut Client,
    posts: &[Post],
    mentions: &[Mentions],
    analyses: &[Analysis],
) -> Result<WriteOutcome, StoreError> {
    let tx = client.transaction().await?;
    let ids: Vec<&str> = posts.iter().map(|p| p.post_id.as_str()).collect();
    let sources: Vec<&str> = posts.iter().map(|p| p.source.as_str()).collect();
    let contents: Vec<&str> = posts.iter().map(|p| p.content.as_str()).collect();
    let authors: Vec<&str> = posts.iter().map(|p| p.author.as_str()).collect();
    let created: Vec<DateTime<Utc>> = posts.iter().map(|p| p.created_at).collect();
    let terms = joined(posts, mentions, |m| &m.terms);
    let entities = joined(posts, mentions, |m| &m.entities);
    let new_posts = tx
        .query(
            INSERT_POSTS,
            &[
                &ids, &sources, &contents, &authors, &created, &terms, &entities,
            ],
        )
        .await?;
    let new_posts: std::collections::HashSet<String> =
        new_posts.iter().map(|row| row.get(0)).collect();

    let a_ids: Vec<&str> = analyses.iter().map(|a| a.post_id.as_str()).collect();
    // A post stored by an earlier transaction may get its next analysis from two transactions
    // at once; each reads the post's latest analysis to move its rollup counts, so they take
    // turns. Posts inserted above are already this transaction's alone.
    let stored_before: Vec<&str> = a_ids
        .iter()
        .copied()
        .filter(|id| !new_posts.contains(*id))
        .collect();
    if !stored_before.is_empty() {
        tx.execute(
            "SELECT 1 FROM post_keys WHERE post_id = ANY($1) ORDER BY post_id FOR UPDATE",
            &[&stored_before],
        )
        .await?;
    }
    let models: Vec<&str> = analyses.iter().map(|a| a.model_name.as_str()).collect();
    let labels: Vec<&str> = analyses
        .iter()
        .map(|a| a.sentiment_label.as_str())
        .collect();
    let scores: Vec<f32> = analyses.iter().map(|a| a.confidence_score).collect();
    let emotions: Vec<Option<&str>> = analyses.iter().map(|a| a.emotion.as_deref()).collect();
    let emotion_scores: Vec<Option<f32>> = analyses.iter().map(|a| a.emotion_score).collect();
    let emotion_models: Vec<Option<&str>> = analyses
        .iter()
        .map(|a| a.emotion_model.as_deref())
        .collect();
    let analyzed: Vec<DateTime<Utc>> = analyses.iter().map(|a| a.analyzed_at).collect();
    let counts = tx
        .query_one(
            INSERT_ANALYSES_AND_ROLL_UP.as_str(),
            &[
                &a_ids,
                &models,
                &labels,
                &scores,
                &emotions,
                &emotion_scores,
                &emotion_models,
                &analyzed,
            ],
        )
        .await?;
    let (analyses_inserted, without_post): (i64, i64) = (counts.get(0), counts.get(1));
    if without_post > 0 {
        // Dropping the transaction rolls the batch back.
        return Err(StoreError::AnalysisWithoutPost(
            u64::try_from(without_post).unwrap_or_default(),
        ));
    }
    tx.commit().await?;
    Ok(WriteOutcome {
        posts_inserted: new_posts.len() as u64,
        analyses_inserted: u64::try_from(analyses_inserted).unwrap_or_default(),
    })
}

/// A stored post with every analysis of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPost {
    pub post: Post,
    pub ingested_at: DateTime<Utc>,
    pub analyses: Vec<Analysis>,
}

/// A page of posts, newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostPage {
    pub posts: Vec<StoredPost>,
    pub total: u64,
}

/// Posts matching `query`, newest first (by `created_at`, then `post_id`), and how many match.
pub async fn list(
    client: &Pooled,
    query: &PostQuery,
    limit: i64,
    offset: i64,
) -> Result<PostPage, StoreError> {
    let total = count(client, query).await?;
    let posts = page(client, query, limit, offset).await?;
    Ok(PostPage { posts, total })
}

/// Most matches a text search counts. Counting every match of a common term reads every post
/// of the range (0.6 s for one term over a day of 10M posts), and a reader wants "more than
/// 10,000", not the exact figure; a search's count stops one past the cap, so a count above it
/// says "at least [`SEARCH_COUNT_CAP`]".
pub const SEARCH_COUNT_CAP: u64 = 10_000;

/// How many posts match `query`: from the rollups when they can count it (see
/// [`crate::stats::count`]); otherwise it reads the matches (a text search at most
/// [`SEARCH_COUNT_CAP`] + 1 of them), so callers that page often keep the answer for a while
/// (see the analytics service's total cache).
pub async fn count(client: &Pooled, query: &PostQuery) -> Result<u64, StoreError> {
    if query.fits_rollups() {
        return crate::stats::count(client, query).await;
    }
    let mut binds = Binds::default();
    let filter = filter_sql(query, &mut binds);
    let from = posts_from(query);
    let sql = if query.search.is_some() {
        let cap = binds.bind(i64::try_from(SEARCH_COUNT_CAP + 1).unwrap_or(i64::MAX));
        format!("SELECT count(*) FROM (SELECT 1 FROM {from} WHERE {filter} LIMIT {cap}) m")
    } else {
        format!("SELECT count(*) FROM {from} WHERE {filter}")
    };
    let rows = select(client, query, &sql, &binds).await?;
    let total: i64 = rows.first().map_or(0, |row| row.get(0));
    Ok(u64::try_from(total).unwrap_or_default())
}

/// One page of the posts matching `query`, newest first (by `created_at`, then `post_id`),
/// each with its analyses.
pub async fn page(
    client: &Pooled,
    query: &PostQuery,
    limit: i64,
    offset: i64,
) -> Result<Vec<StoredPost>, StoreError> {
    let mut binds = Binds::default();
    let filter = filter_sql(query, &mut binds);
    let (limit, offset) = (binds.bind(limit), binds.bind(offset));
    let sql = format!(
        "SELECT p.post_id, p.source, p.author, p.content, p.created_at, p.ingested_at
         FROM {FROM_SQL} WHERE {filter}
         ORDER BY p.created_at DESC, p.post_id DESC
         LIMIT {limit} OFFSET {offset}"
    );
    let rows = select(client, query, &sql, &binds).await?;
    with_analyses(client, rows.iter().map(stored_post).collect()).await
}

/// A post's place in the page order (`created_at` descending, then `post_id` descending):
/// where a keyset page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub created_at: DateTime<Utc>,
    pub post_id: String,
}

impl PageKey {
    /// The key of `post`, to continue after it.
    pub fn of(post: &StoredPost) -> Self {
        Self {
            created_at: post.post.created_at,
            post_id: post.post.post_id.clone(),
        }
    }
}

/// The page of posts matching `query` that comes strictly after `after` in the page order,
/// each with its analyses.
///
/// Unlike an offset, the row comparison starts the scan of the `(created_at DESC, post_id
/// DESC)` index at `after`, so the thousandth page costs what the first does, and posts
/// arriving meanwhile do not shift the pages.
pub async fn page_after(
    client: &Pooled,
    query: &PostQuery,
    limit: i64,
    after: &PageKey,
) -> Result<Vec<StoredPost>, StoreError> {
    let mut binds = Binds::default();
    let filter = filter_sql(query, &mut binds);
    let (created_at, post_id) = (
        binds.bind(after.created_at),
        binds.bind(after.post_id.clone()),
    );
    let limit = binds.bind(limit);
    let sql = format!(
        "SELECT p.post_id, p.source, p.author, p.content, p.created_at, p.ingested_at
         FROM {FROM_SQL} WHERE {filter}
           AND (p.created_at, p.post_id) < ({created_at}::timestamptz, {post_id}::varchar)
         ORDER BY p.created_at DESC, p.post_id DESC
         LIMIT {limit}"
    );
    let rows = select(client, query, &sql, &binds).await?;
    with_analyses(client, rows.iter().map(stored_post).collect()).await
}

/// The FROM clause of a count: the posts joined with their latest analysis only when the filter
/// reads it (sentiment, emotion), since every stored post has an analysis (both are written in
/// one transaction). A page keeps the join whatever its filter: with a `LIMIT` parameter its one
/// reused plan is made for a tenth of the rows, and only the join's cost per post keeps that
/// plan a walk of the newest posts rather than a sort of them all.
fn posts_from(query: &PostQuery) -> &'static str {
    if query.sentiment.is_some() || query.emotion.is_some() {
        FROM_SQL
    } else {
        "social_media_posts p"
    }
}

/// Runs a read of the posts: prepared once per connection, except with a text search.
///
/// Whether a search is best served by the trigram index (a rare term) or by walking the
/// newest posts until the page is full (a common one) depends on the term, so a search is
/// planned for its term each time (an unnamed statement), which costs about a millisecond.
/// Every other filter is a prepared statement of its own shape (see [`Binds`]), whose plan
/// PostgreSQL soon reuses.
async fn select(
    client: &Pooled,
    query: &PostQuery,
    sql: &str,
    binds: &Binds,
) -> Result<Vec<Row>, StoreError> {
    if query.search.is_some() {
        return Ok(client.query(sql, &binds.params()).await?);
    }
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, &binds.params()).await?)
}

/// `posts` with their analyses attached, newest analysis first.
async fn with_analyses(
    client: &Pooled,
    mut posts: Vec<StoredPost>,
) -> Result<Vec<StoredPost>, StoreError> {
    let analyses = analyses_of(client, &posts).await?;
    for analysis in analyses {
        if let Some(post) = posts
            .iter_mut()
            .find(|p| p.post.post_id == analysis.post_id)
        {
            post.analyses.push(analysis);
        }
    }
    Ok(posts)
}

/// Posts with the given ids (any order), with their analyses. The keys say which partition
/// holds each post.
pub async fn get_many(client: &Pooled, ids: &[&str]) -> Result<Vec<StoredPost>, StoreError> {
    let rows = client
        .query(
            "SELECT p.post_id, p.source, p.author, p.content, p.created_at, p.ingested_at
             FROM post_keys k
             JOIN social_media_posts p ON p.post_id = k.post_id AND p.ingested_at = k.ingested_at
             WHERE k.post_id = ANY($1)",
            &[&ids],
        )
        .await?;
    with_analyses(client, rows.iter().map(stored_post).collect()).await
}

/// Row counts of both tables, for checks and tests.
pub async fn counts(client: &Client) -> Result<(u64, u64), StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM social_media_posts),
                    (SELECT count(*) FROM sentiment_analysis)",
            &[],
        )
        .await?;
    let posts: i64 = row.get(0);
    let analyses: i64 = row.get(1);
    Ok((
        u64::try_from(posts).unwrap_or_default(),
        u64::try_from(analyses).unwrap_or_default(),
    ))
}

/// Checks that the tables the worker writes exist and can be read: a dependency probe that also
/// catches a database without its migrations.
pub async fn check_writable(client: &Client) -> Result<(), StoreError> {
    client
        .simple_query(
            "SELECT 1 FROM social_media_posts LIMIT 0; SELECT 1 FROM sentiment_analysis LIMIT 0",
        )
        .await?;
    Ok(())
}

/// Rows and distinct keys of both tables: equal pairs mean no duplicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub posts: u64,
    pub distinct_post_ids: u64,
    pub analyses: u64,
    /// Distinct `(post_id, model_name)` pairs.
    pub distinct_analyses: u64,
    /// Posts with no analysis.
    pub unanalysed_posts: u64,
}

/// Counts rows and distinct keys, for consistency checks after faults.
pub async fn census(client: &Client) -> Result<Census, StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM social_media_posts),
                    (SELECT count(DISTINCT post_id) FROM social_media_posts),
                    (SELECT count(*) FROM sentiment_analysis),
                    (SELECT count(*) FROM (SELECT DISTINCT post_id, model_name
                                           FROM sentiment_analysis) AS pairs),
                    (SELECT count(*) FROM social_media_posts p
                     WHERE NOT EXISTS (SELECT 1 FROM sentiment_analysis a
                                       WHERE a.post_id = p.post_id))",
            &[],
        )
        .await?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or_default();
    Ok(Census {
        posts: count(0),
        distinct_post_ids: count(1),
        analyses: count(2),
        distinct_analyses: count(3),
        unanalysed_posts: count(4),
    })
}

/// Which of `ids` are stored. Posts and their analyses commit in one transaction, so a post
/// found here is completely done: a worker that re-reads its entry after a crash between the
/// commit and the acknowledgement only needs to acknowledge it.
pub async fn stored_among(client: &Client, ids: &[&str]) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT post_id FROM post_keys WHERE post_id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Every stored post id, for checks that nothing was lost.
pub async fn all_ids(client: &Client) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query("SELECT post_id FROM social_media_posts", &[])
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The analyses of `posts`, newest first, each looked up in its post's partition.
async fn analyses_of(client: &Pooled, posts: &[StoredPost]) -> Result<Vec<Analysis>, StoreError> {
    let ids: Vec<&str> = posts.iter().map(|p| p.post.post_id.as_str()).collect();
    let arrivals: Vec<DateTime<Utc>> = posts.iter().map(|p| p.ingested_at).collect();
    let statement = client
        .prepare_cached(
            "SELECT s.post_id, s.model_name, s.sentiment_label, s.confidence_score,
                    s.emotion, s.emotion_score, s.emotion_model, s.analyzed_at
             FROM UNNEST($1::varchar[], $2::timestamptz[]) AS p(post_id, ingested_at)
             JOIN sentiment_analysis s
               ON s.post_id = p.post_id AND s.ingested_at = p.ingested_at
             ORDER BY s.analyzed_at DESC, s.id DESC",
        )
        .await?;
    let rows = client.query(&statement, &[&ids, &arrivals]).await?;
    Ok(rows
        .iter()
        .map(|row| Analysis {
            post_id: row.get(0),
            model_name: row.get(1),
            sentiment_label: row.get(2),
            confidence_score: row.get(3),
            emotion: row.get(4),
            emotion_score: row.get(5),
            emotion_model: row.get(6),
            analyzed_at: row.get(7),
        })
        .collect())
}

fn stored_post(row: &Row) -> StoredPost {
    StoredPost {
        post: Post {
            post_id: row.get(0),
            source: row.get(1),
            author: row.get(2),
            content: row.get(3),
            created_at: row.get(4),
        },
        ingested_at: row.get(5),
        analyses: Vec::new(),
    }
}
