//! The filter shared by the read queries.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// Which posts a query covers; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostQuery {
    pub source: Option<String>,
    pub sentiment: Option<String>,
    pub emotion: Option<String>,
    /// Case-insensitive substring of the content, matched literally (no wildcards).
    pub search: Option<String>,
    pub author: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl PostQuery {
    /// Whether the rollups can count this query: they keep source, sentiment and emotion per
    /// minute, not the text or the author.
    pub fn fits_rollups(&self) -> bool {
        self.search.is_none() && self.author.is_none()
    }

    /// The search text as an ILIKE pattern with `%`, `_` and `\` escaped.
    pub(crate) fn search_pattern(&self) -> Option<String> {
        self.search.as_ref().map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

/// Parameter values bound while a statement is written, numbered in the order they are bound.
///
/// A statement holds only the conditions its query sets, so each combination of filters is its
/// own statement and one plan serves every value of it (see [`crate::connect_read_pool`]):
/// planning a read over the partitioned tables costs more than running it. A condition written
/// as `$1 IS NULL OR p.source = $1` would instead need planning for every value to use an index.
#[derive(Default)]
pub(crate) struct Binds {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Binds {
    /// Binds `value`; returns its placeholder (`$n`).
    pub(crate) fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The conditions of `query` over `p` (posts) and `a` (the post's latest analysis, see
/// [`FROM_SQL`]), joined by AND, with their values bound; `TRUE` when it sets none.
pub(crate) fn filter_sql(query: &PostQuery, binds: &mut Binds) -> String {
    let mut conditions = Vec::new();
    if let Some(source) = &query.source {
        conditions.push(format!("p.source = {}", binds.bind(source.clone())));
    }
    if let Some(sentiment) = &query.sentiment {
        conditions.push(format!(
            "a.sentiment_label = {}",
            binds.bind(sentiment.clone())
        ));
    }
    if let Some(emotion) = &query.emotion {
        conditions.push(format!("a.emotion = {}", binds.bind(emotion.clone())));
    }
    if let Some(pattern) = query.search_pattern() {
        conditions.push(format!("p.content ILIKE {}", binds.bind(pattern)));
    }
    if let Some(author) = &query.author {
        conditions.push(format!("p.author = {}", binds.bind(author.clone())));
    }
    if let Some(from) = query.from {
        conditions.push(format!("p.created_at >= {}", binds.bind(from)));
    }
    if let Some(to) = query.to {
        conditions.push(format!("p.created_at < {}", binds.bind(to)));
    }
    joined(conditions)
}

/// The conditions of `query` a rollup row can answer (source, sentiment, emotion), with their
/// values bound; `TRUE` when it sets none.
pub(crate) fn rollup_filter_sql(query: &PostQuery, binds: &mut Binds) -> String {
    let mut conditions = Vec::new();
    if let Some(source) = &query.source {
        conditions.push(format!("source = {}", binds.bind(source.clone())));
    }
    if let Some(sentiment) = &query.sentiment {
        conditions.push(format!("sentiment = {}", binds.bind(sentiment.clone())));
    }
    if let Some(emotion) = &query.emotion {
        conditions.push(format!("emotion = {}", binds.bind(emotion.clone())));
    }
    joined(conditions)
}

fn joined(conditions: Vec<String>) -> String {
    if conditions.is_empty() {
        "TRUE".to_owned()
    } else {
        conditions.join(" AND ")
    }
}

/// Each post joined with its most recent analysis (ties of `analyzed_at` go to the later
/// insert); the FROM clause [`filter_sql`] expects when it filters by the analysis. The
/// analysis shares the post's time of arrival, which lets PostgreSQL look in that one
/// partition.
pub(crate) const FROM_SQL: &str = "social_media_posts p
     JOIN LATERAL (
         SELECT s.sentiment_label, s.confidence_score, s.emotion
         FROM sentiment_analysis s
         WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
         ORDER BY s.analyzed_at DESC, s.id DESC
         LIMIT 1
     ) a ON TRUE";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_wildcards_are_literal() {
        let query = PostQuery {
            search: Some(r"50%_off\".into()),
            ..PostQuery::default()
        };
        assert_eq!(query.search_pattern().as_deref(), Some(r"%50\%\_off\\%"));
    }

    #[test]
    fn a_filter_holds_only_the_conditions_set() {
        let mut binds = Binds::default();
        assert_eq!(filter_sql(&PostQuery::default(), &mut binds), "TRUE");
        assert!(binds.params().is_empty());

        let query = PostQuery {
            source: Some("twitter".into()),
            search: Some("battery".into()),
            ..PostQuery::default()
        };
        let mut binds = Binds::default();
        binds.bind(1_i64);
        assert_eq!(
            filter_sql(&query, &mut binds),
            "p.source = $2 AND p.content ILIKE $3"
        );
        assert_eq!(binds.params().len(), 3);
        assert_eq!(
            rollup_filter_sql(&query, &mut Binds::default()),
            "source = $1"
        );
    }
}
