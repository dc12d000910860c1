//! Reading the term rollups: how many posts of each sentiment mention each term and entity in a
//! window, and example posts that do.
//!
//! `term_minutes` and `term_hours` are kept by [`crate::posts::insert_analysed_mentioning`] in
//! the same statement as the sentiment rollups. A window is widened to whole minutes and cut by
//! [`Plan`] into minutes at its ends and hours in between, so a day costs 24 hour rows per term,
//! not one row per post. Sentiment totals are read from the sentiment rollups with the same
//! widening, so that shares are of the same posts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, types::ToSql};

use crate::{
    StoreError,
    rollups::{Plan, Segment, Tier},
};

/// What a counted text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TermKind {
    /// A word, a two-word phrase or an `@mention` of the post's text.
    Term,
    /// An entity of the catalogue that the post names, or one of its `#hashtags`.
    Entity,
}

impl TermKind {
    fn code(self) -> &'static str {
        match self {
            TermKind::Term => "t",
            TermKind::Entity => "e",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "t" => Some(TermKind::Term),
            "e" => Some(TermKind::Entity),
            _ => None,
        }
    }
}

/// Posts per sentiment. Labels other than the three are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentimentCounts {
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
}

impl SentimentCounts {
    pub fn total(&self) -> u64 {
        self.positive + self.neutral + self.negative
    }

    /// The count of `sentiment`; 0 for a label that is not one of the three.
    pub fn of(&self, sentiment: &str) -> u64 {
        match sentiment {
            "positive" => self.positive,
            "neutral" => self.neutral,
            "negative" => self.negative,
            _ => 0,
        }
    }

    fn add(&mut self, sentiment: &str, posts: u64) {
        match sentiment {
            "positive" => self.positive += posts,
            "neutral" => self.neutral += posts,
            "negative" => self.negative += posts,
            _ => {}
        }
    }
}

/// One term or entity of a window and the posts that mention it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermCount {
    pub kind: TermKind,
    pub term: String,
    pub posts: SentimentCounts,
}

/// The bounds of a window's minute and hour segments, in the order of the `$n` placeholders
/// of [`COUNT_TERMS`] and [`COUNT_POSTS`].
fn bounds(from: DateTime<Utc>, to: DateTime<Utc>) -> [DateTime<Utc>; 8] {
    let plan = Plan::new(Some(from), Some(to), Tier::Minutes, Tier::Hours);
    let mut bounds = [DateTime::<Utc>::UNIX_EPOCH; 8];
    for (i, segment) in plan
        .tier(Tier::Minutes)
        .into_iter()
        .chain(plan.tier(Tier::Hours))
        .enumerate()
    {
        let Segment { from, to } = segment;
        // Both ends are bounded here (the window is), so EMPTY's epoch pair stands for none.
        bounds[2 * i] = from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        bounds[2 * i + 1] = to.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    }
    bounds
}

/// `$9` true counts only the entities (catalogue entities and hashtags).
const COUNT_TERMS: &str = "
SELECT kind, term, sentiment, sum(posts)::bigint
FROM (
    SELECT kind, term, sentiment, posts FROM term_minutes
    WHERE ((minute >= $1 AND minute < $2) OR (minute >= $3 AND minute < $4))
      AND (NOT $9::bool OR kind = 'e')
    UNION ALL
    SELECT kind, term, sentiment, posts FROM term_hours
    WHERE ((hour >= $5 AND hour < $6) OR (hour >= $7 AND hour < $8))
      AND (NOT $9::bool OR kind = 'e')
) t
GROUP BY 1, 2, 3 HAVING sum(posts) > 0";

const COUNT_POSTS: &str = "
SELECT sentiment, sum(posts)::bigint
FROM (
    SELECT sentiment, posts FROM sentiment_minutes
    WHERE (minute >= $1 AND minute < $2) OR (minute >= $3 AND minute < $4)
    UNION ALL
    SELECT sentiment, posts FROM sentiment_hours
    WHERE (hour >= $5 AND hour < $6) OR (hour >= $7 AND hour < $8)
) t
GROUP BY 1";

fn params(bounds: &[DateTime<Utc>; 8]) -> Vec<&(dyn ToSql + Sync)> {
    bounds.iter().map(|b| b as &(dyn ToSql + Sync)).collect()
}

fn count(row: &tokio_postgres::Row, index: usize) -> u64 {
    u64::try_from(row.get::<_, i64>(index)).unwrap_or_default()
}

/// What [`counts`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Every term and entity.
    All,
    /// Entities only (catalogue entities and hashtags): a few rows, where the terms may be
    /// thousands.
    Entities,
}

/// The terms and entities mentioned in `[from, to)` (widened to whole minutes), with the posts
/// of each sentiment that mention them.
pub async fn counts(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    counted: Counted,
) -> Result<Vec<TermCount>, StoreError> {
    let bounds = bounds(from, to);
    let entities_only = counted == Counted::Entities;
    let mut values = params(&bounds);
    values.push(&entities_only);
    let rows = client.query(COUNT_TERMS, &values).await?;
    let mut by_term: HashMap<(TermKind, String), SentimentCounts> = HashMap::new();
    for row in &rows {
        let Some(kind) = TermKind::from_code(row.get(0)) else {
            continue;
        };
        let sentiment: String = row.get(2);
        by_term
            .entry((kind, row.get(1)))
            .or_default()
            .add(&sentiment, count(row, 3));
    }
    let mut counted: Vec<TermCount> = by_term
        .into_iter()
        .map(|((kind, term), posts)| TermCount { kind, term, posts })
        .collect();
    counted.sort_by(|a, b| (a.kind, &a.term).cmp(&(b.kind, &b.term)));
    Ok(counted)
}

/// Posts of each sentiment in `[from, to)`, widened to whole minutes as [`counts`] widens it.
pub async fn posts(
    client: &Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<SentimentCounts, StoreError> {
    let bounds = bounds(from, to);
    let rows = client.query(COUNT_POSTS, &params(&bounds)).await?;
    let mut totals = SentimentCounts::default();
    for row in &rows {
        let sentiment: String = row.get(0);
        totals.add(&sentiment, count(row, 1));
    }
    Ok(totals)
}

/// A post quoted as an example of a term.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub post_id: String,
    pub source: String,
    pub author: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub sentiment: String,
}

/// Up to `per_term` recent posts of `sentiment` that mention each of `wanted`, from the hours
/// of `[from, to)`: the examples the hour rollup kept, newest hour first, checked against the
/// posts (a post past retention, or re-analysed to another sentiment since, is left out).
pub async fn examples(
    client: &Client,
    sentiment: &str,
    wanted: &[(TermKind, String)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    per_term: usize,
) -> Result<HashMap<(TermKind, String), Vec<Example>>, StoreError> {
    if wanted.is_empty() || per_term == 0 {
        return Ok(HashMap::new());
    }
    let kinds: Vec<&str> = wanted.iter().map(|(k, _)| k.code()).collect();
    let terms: Vec<&str> = wanted.iter().map(|(_, t)| t.as_str()).collect();
    let hours = i64::try_from(per_term).unwrap_or(2);
    let rows = client
        .query(
            "WITH wanted AS (
                 SELECT * FROM unnest($1::char[], $2::text[]) AS w(kind, term)
             ),
             candidates AS (
                 SELECT w.kind, w.term, e.post_id, h.hour, e.position
                 FROM wanted w
                 CROSS JOIN LATERAL (
                     SELECT hour, examples FROM term_hours
                     WHERE kind = w.kind AND term = w.term AND sentiment = $3
                       AND hour >= date_trunc('hour', $4::timestamptz, 'UTC') AND hour < $5
                       AND posts > 0
                     ORDER BY hour DESC LIMIT $6
                 ) h
                 CROSS JOIN LATERAL unnest(h.examples) WITH ORDINALITY AS e(post_id, position)
             )
             SELECT c.kind, c.term, p.post_id, p.source, p.author, p.content, p.created_at,
                    a.sentiment_label
             FROM candidates c
             JOIN post_keys k ON k.post_id = c.post_id
             JOIN social_media_posts p ON p.post_id = k.post_id AND p.ingested_at = k.ingested_at
             JOIN LATERAL (
                 SELECT s.sentiment_label FROM sentiment_analysis s
                 WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
                 ORDER BY s.analyzed_at DESC, s.id DESC LIMIT 1
             ) a ON a.sentiment_label = $3
             ORDER BY c.kind, c.term, c.hour DESC, c.position",
            &[&kinds, &terms, &sentiment, &from, &to, &hours],
        )
        .await?;
    let mut found: HashMap<(TermKind, String), Vec<Example>> = HashMap::new();
    for row in &rows {
        let Some(kind) = TermKind::from_code(row.get(0)) else {
            continue;
        };
        let list = found.entry((kind, row.get(1))).or_default();
        let post_id: String = row.get(2);
        if list.len() >= per_term || list.iter().any(|e| e.post_id == post_id) {
            continue;
        }
        list.push(Example {
            post_id,
            source: row.get(3),
            author: row.get(4),
            content: row.get(5),
            created_at: row.get(6),
            sentiment: row.get(7),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, h, m, s)
            .single()
            .expect("valid time")
    }

    #[test]
    fn a_window_is_cut_into_minutes_at_its_ends_and_hours_between() {
        let b = bounds(t(9, 12, 30), t(11, 40, 10));
        assert_eq!(
            b,
            [
                t(9, 12, 0),
                t(10, 0, 0),
                t(11, 0, 0),
                t(11, 41, 0),
                t(10, 0, 0),
                t(11, 0, 0),
                DateTime::<Utc>::UNIX_EPOCH,
                DateTime::<Utc>::UNIX_EPOCH,
            ]
        );
    }

    #[test]
    fn an_empty_window_counts_nothing() {
        let b = bounds(t(10, 0, 0), t(10, 0, 0));
        assert!(b.iter().all(|x| *x == DateTime::<Utc>::UNIX_EPOCH));
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in [TermKind::Term, TermKind::Entity] {
            assert_eq!(TermKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(TermKind::from_code("e "), Some(TermKind::Entity));
        assert_eq!(TermKind::from_code("x"), None);
    }
}
