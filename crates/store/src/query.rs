//! The filter shared by the read queries.

use chrono::{DateTime, Utc};

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

/// The WHERE clause over `p` (posts) and `a` (the post's latest analysis) for parameters
/// `$1..$7` in the order of [`filter_params`].
pub(crate) const FILTER_SQL: &str = "($1::text IS NULL OR p.source = $1)
     AND ($2::text IS NULL OR a.sentiment_label = $2)
     AND ($3::text IS NULL OR a.emotion = $3)
     AND ($4::text IS NULL OR p.content ILIKE $4)
     AND ($5::text IS NULL OR p.author = $5)
     AND ($6::timestamptz IS NULL OR p.created_at >= $6)
     AND ($7::timestamptz IS NULL OR p.created_at < $7)";

/// Each post joined with its most recent analysis (ties of `analyzed_at` go to the later
/// insert); the FROM clause [`FILTER_SQL`] expects. The analysis shares the post's day of
/// arrival, which lets PostgreSQL look in that one partition.
pub(crate) const FROM_SQL: &str = "social_media_posts p
     JOIN LATERAL (
         SELECT s.sentiment_label, s.confidence_score, s.emotion
         FROM sentiment_analysis s
         WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
         ORDER BY s.analyzed_at DESC, s.id DESC
         LIMIT 1
     ) a ON TRUE";

/// Owned parameter values for [`FILTER_SQL`].
pub(crate) struct FilterParams {
    source: Option<String>,
    sentiment: Option<String>,
    emotion: Option<String>,
    search: Option<String>,
    author: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl FilterParams {
    pub(crate) fn new(query: &PostQuery) -> Self {
        Self {
            source: query.source.clone(),
            sentiment: query.sentiment.clone(),
            emotion: query.emotion.clone(),
            search: query.search_pattern(),
            author: query.author.clone(),
            from: query.from,
            to: query.to,
        }
    }

    /// The values in the order of [`FILTER_SQL`]'s parameters, owned.
    pub(crate) fn into_values(self) -> [Box<dyn tokio_postgres::types::ToSql + Sync + Send>; 7] {
        [
            Box::new(self.source),
            Box::new(self.sentiment),
            Box::new(self.emotion),
            Box::new(self.search),
            Box::new(self.author),
            Box::new(self.from),
            Box::new(self.to),
        ]
    }

    pub(crate) fn as_params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        vec![
            &self.source,
            &self.sentiment,
            &self.emotion,
            &self.search,
            &self.author,
            &self.from,
            &self.to,
        ]
    }
}

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
}
